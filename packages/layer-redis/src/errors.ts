import { LayerError, StrataError } from '@strata-cache/core';

export const PKG = '@strata-cache/layer-redis';

/** A command that did not answer within its time limit (counted by the circuit breaker). */
export class RedisTimeoutError extends LayerError {}

/** Refused at once: the circuit is open, or the connection is known to be down. */
export class CircuitOpenError extends LayerError {}

/** The operation's `LayerContext.signal` was aborted before its command was sent; nothing was sent. */
export class AbortedError extends LayerError {}

export function closedError(name: string): StrataError {
  return new StrataError('STRATA_CLOSED', `${PKG}: layer "${name}" is closed`);
}

export function abortedError(name: string, operation: string, signal: AbortSignal): AbortedError {
  return new AbortedError(name, operation, `${PKG}: ${operation} was abandoned by its caller before it was sent; nothing was sent`, { cause: signal.reason });
}

/** Timeouts and connection-level failures count against the breaker; Redis reply errors do not (except "unavailable" ones). */
export function isAvailabilityError(error: unknown): boolean {
  if (error instanceof RedisTimeoutError) return true;
  if (error instanceof AbortedError) return false;
  const e = error as { name?: string; message?: string } | undefined;
  const message = String(e?.message ?? '');
  if (e?.name === 'ReplyError') return /^(LOADING|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN)\b/.test(message);
  return true;
}

export function wrap(layer: string, operation: string, error: unknown): StrataError {
  if (StrataError.isInstance(error)) return error;
  return new LayerError(layer, operation, `${PKG}: ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

/** The option that sets an operation's time limit (named in timeout messages). */
export function optionFor(operation: string): string {
  if (operation === 'get' || operation === 'lock') return 'timeoutMs';
  if (operation === 'set' || operation === 'delete' || operation === 'unlock') return 'writeTimeoutMs';
  if (operation === 'publish') return 'publishTimeoutMs';
  if (operation === 'connect') return 'connectTimeoutMs';
  return 'adminTimeoutMs';
}

export function timeoutError(layer: string, operation: string, ms: number, option = optionFor(operation)): RedisTimeoutError {
  return new RedisTimeoutError(layer, operation, `${PKG}: ${operation} did not finish within ${ms} ms of being sent (option: ${option})`);
}
