import { describe, expect, it } from 'vitest';
import { isCredentialField, keyRequestOf, langChainSemanticSplit, parseLlmString } from '../src/index.js';

describe('llmString parsing', () => {
  it('parses LangChain llmStrings and drops credentials, also nested ones', () => {
    const s =
      '_model:"base_chat_model",_type:"openai",apiKey:"sk-1",configuration:{"baseURL":"http://x","apiKey":"sk-2","headers":{"Authorization":"Bearer t"}},model:"gpt-4o-mini",stop:["a,b","c"],temperature:0';
    expect(parseLlmString(s)).toEqual({
      _model: 'base_chat_model',
      _type: 'openai',
      configuration: { baseURL: 'http://x', headers: {} },
      model: 'gpt-4o-mini',
      stop: ['a,b', 'c'],
      temperature: 0,
    });
    expect(parseLlmString('stream:false,temperature:0.5', new Set(['stream']))).toEqual({ temperature: 0.5 });
    expect(parseLlmString('not an llm string')).toBeUndefined();
    expect(parseLlmString('a:"unterminated')).toBeUndefined();
  });

  it('credential names, not token counts', () => {
    for (const n of ['apiKey', 'openAIApiKey', 'anthropic_api_key', 'clientSecret', 'password', 'accessToken', 'Authorization', 'credentials'])
      expect(isCredentialField(n)).toBe(true);
    for (const n of ['maxTokens', 'max_tokens', 'model', 'temperature', 'topK', 'budget_tokens']) expect(isCredentialField(n)).toBe(false);
  });

  it('keys do not depend on the API key', () => {
    const a = keyRequestOf('Human: hi', 'apiKey:"sk-1",model:"m",temperature:0');
    const b = keyRequestOf('Human: hi', 'apiKey:"sk-2",model:"m",temperature:0');
    expect(a).toEqual(b);
    expect(JSON.stringify(a)).not.toContain('sk-');
  });
});

describe('semantic split', () => {
  const llm = { _model: 'base_chat_model', model: 'm' };
  it('compares the last human turn of a chat prompt', () => {
    expect(langChainSemanticSplit({ llm, prompt: 'System: Be nice\nHuman: How do I reset it?' })).toEqual({
      text: 'How do I reset it?',
      context: { llm, history: 'System: Be nice\n' },
    });
    expect(langChainSemanticSplit({ llm, prompt: 'Human: Only a question' })?.text).toBe('Only a question');
    expect(langChainSemanticSplit({ llm, prompt: 'Human: a\nAI: b\nHuman: c\nd' })?.text).toBe('c\nd');
  });
  it('declines prompts that do not end in a human turn', () => {
    expect(langChainSemanticSplit({ llm, prompt: 'Human: a\nAI: b' })).toBeUndefined();
    expect(langChainSemanticSplit({ llm, prompt: 'System: only' })).toBeUndefined();
    expect(langChainSemanticSplit({ llm, prompt: 'Human:    ' })).toBeUndefined();
  });
  it('compares a text LLM prompt whole', () => {
    expect(langChainSemanticSplit({ llm: { _model: 'base_llm' }, prompt: 'Tell me a joke' })?.text).toBe('Tell me a joke');
  });
});
