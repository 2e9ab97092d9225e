// The provider spec the caching fetch's tests run against: one chat endpoint whose streams end
// with `[DONE]`, no usage, no price.
import { chatProfile } from '@strata-cache/core';
import type { EndpointSpec, ProviderSpec } from '../src/index.js';

export function chatEndpoint(fromEvents: EndpointSpec['fromEvents'] = () => ({ value: null })): EndpointSpec {
  return {
    path: '/chat/completions',
    profile: chatProfile,
    streams: true,
    usage: () => undefined,
    complete: (events) => events.at(-1)?.data === '[DONE]',
    fromEvents,
  };
}

export function testSpec(endpoint: EndpointSpec = chatEndpoint(), keyHeaders: string[] = []): ProviderSpec<any> {
  return {
    packageName: '@strata-cache/test',
    clientHint: 'new Client()',
    isClient: () => false,
    endpoints: () => [endpoint],
    keyHeaders,
    requestIdHeader: 'x-request-id',
  };
}
