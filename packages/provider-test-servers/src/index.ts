export { startServer, json, sse, httpError, hangup, encodeSse } from './server.js';
export type { ProviderServer, RecordedRequest, Reply, SseEvent, Handler, StartServerOptions } from './server.js';
export {
  startOpenAIServer,
  openAIHandler,
  openAIError,
  chatCompletion,
  chatCompletionChunks,
  response as openAIResponse,
  responseBody as openAIResponseBody,
  responseEvents as openAIResponseEvents,
  embeddings as openAIEmbeddings,
  fakeEmbedding,
} from './openai.js';
export type { OpenAIServerOptions } from './openai.js';
export { startAnthropicServer, anthropicHandler, anthropicError, message as anthropicMessage, messageEvents as anthropicMessageEvents } from './anthropic.js';
export type { AnthropicServerOptions } from './anthropic.js';
export { lastUserText, words, fakeTokens, supportChatRequest } from './text.js';
export { watchOutput } from './watch.js';
export type { WatchedCache } from './watch.js';
export { SECRET_KEY, SECRET_ORG, SECRET_PROJECT, memoryCache, stored, collect, plain, sdkChoice, warningsDuring } from './adapter-testing.js';
export { benchAdapter, runScenarios, writeSection, renderMarkdown } from './adapter-bench.js';
export type { AdapterBenchSetup, ScenarioResult } from './adapter-bench.js';
