import type { RequestProfile, ScopeInput, TokenUsage } from '@strata-cache/core';

/** A fetch function as the SDKs call it. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** One recorded server-sent event. `t` is ms since the response started (for paced replay). */
export interface RecordedEvent {
  event?: string;
  data: string;
  t: number;
}

/** What a provider adapter tells the caching fetch about one endpoint. */
export interface EndpointSpec {
  /** The request path ends with this (`/chat/completions`). */
  readonly path: string;
  readonly profile: RequestProfile;
  /** Whether `stream: true` requests to this endpoint are cached (SSE). */
  readonly streams: boolean;
  /** The request as it is fingerprinted (e.g. without prompt-cache markers); the body sent is unchanged. @default the body */
  keyBody?(body: Record<string, unknown>): Record<string, unknown>;
  /**
   * JSON Schemas in the request whose property order the model follows (structured outputs,
   * tool parameters). Their `properties` order becomes part of the key: providers generate the
   * fields in schema order, so two schemas that differ only in order give different answers.
   */
  schemas?(body: Record<string, unknown>): unknown[];
  /**
   * Why this request must go to the provider uncached (a background job, server-side
   * conversation state), or undefined to cache it. Counted under that reason (see `uncachedRequests`).
   */
  uncachedReason?(body: Record<string, unknown>): string | undefined;
  /** False: hand the JSON answer over but do not store it (e.g. a failed or queued response). */
  // biome-ignore lint/suspicious/noExplicitAny: each provider reads its own response shape
  acceptBody?(body: any): boolean;
  /** Usage of a JSON response body. */
  // biome-ignore lint/suspicious/noExplicitAny: each provider reads its own response shape
  usage(body: any): TokenUsage | undefined;
  /**
   * True when `fromEvents(...).value` can stand for the body a non-streaming request returns
   * (for every stream request of the endpoint; `streamFormsShared` says it per request): a
   * completed stream is then also stored in its non-stream form, so a later non-streaming
   * request is a hit. The other way round is `eventsFromBody`.
   */
  readonly streamValueIsJsonBody?: boolean;
  /**
   * The events of a stream carrying `body`, a stored non-stream answer, for the stream request
   * `request` — so a stream request is answered from an entry a non-stream request stored.
   * Undefined when the body holds what this endpoint's stream cannot carry (the entry is then
   * refreshed from the provider). The provider's chunking is not known: each part of the answer
   * arrives as one event. `fromEvents(eventsFromBody(body, request)).value` is `body` again.
   */
  // biome-ignore lint/suspicious/noExplicitAny: each provider reads its own response shape
  eventsFromBody?(body: any, request: Record<string, unknown>): RecordedEvent[] | undefined;
  /**
   * True when this stream request's answer and the same request's non-stream answer stand for
   * each other both ways: `fromEvents(...).value` is the body a non-stream request gets, and
   * `eventsFromBody` rebuilds the stream. The two forms then share their semantic entries (a
   * question asked with `stream: true` is answered by a paraphrase asked without, and the other
   * way round); exact keys stay apart. @default false (every stream request has its own entries)
   */
  streamFormsShared?(request: Record<string, unknown>): boolean;
  /** Usage, model and the assembled provider-native value of a completed stream. */
  fromEvents(events: readonly RecordedEvent[]): { usage?: TokenUsage; model?: string; value: unknown };
  /** True when the events end the way a normally completed stream ends (and carry no error). */
  complete(events: readonly RecordedEvent[]): boolean;
}

/** Context handed to a `scope` function. */
export interface ScopeContext {
  /** The JSON request body: read it, never change it (a body the caching fetch keeps is frozen). */
  readonly body: Record<string, unknown>;
  /** Request path, e.g. `/v1/chat/completions`. */
  readonly path: string;
}

/** Tenant / namespace of every request, or a function of the request returning it. */
export type ScopeOption = ScopeInput | ((ctx: ScopeContext) => ScopeInput | undefined);

export interface ReplayPacing {
  /**
   * `none`: replay as fast as the consumer reads. `recorded`: keep the original gaps between
   * events (capped by `maxGapMs`). A number: that many ms between events.
   */
  readonly mode: 'none' | 'recorded' | number;
  readonly maxGapMs: number;
  /** Whether a stream request may be answered from a stored non-stream answer (see `CachingOptions.replay`). @default true */
  readonly rebuildStreams?: boolean;
}
