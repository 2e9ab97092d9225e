/** Marker every Strata error carries (also set by older copies of core): `StrataError.isInstance`. */
const BASE_MARKER = Symbol.for('strata-cache.error');

/** Stable codes; match on `code` (or `name`), never on message text. */
export type StrataErrorCode =
  | 'STRATA_INVALID_REQUEST'
  | 'STRATA_INVALID_OPTION'
  | 'STRATA_LAYER'
  | 'STRATA_LAYER_TIMEOUT'
  | 'STRATA_MISSING_DEPENDENCY'
  | 'STRATA_CLOSED'
  | 'STRATA_DECODE'
  | 'STRATA_UPSTREAM'
  | 'STRATA_ABANDONED';

export interface StrataErrorOptions {
  cause?: unknown;
  /** The option, request field or path the error is about. */
  field?: string | undefined;
}

/**
 * The marker of one error class: `Symbol.for('strata-cache.error:<errorClass>')`. `errorClass` is
 * an own static string on core's classes (so a minifier renaming the class cannot change it);
 * subclasses elsewhere that do not declare one use their class name.
 */
function markerOf(ctor: object): symbol {
  const own = Object.getOwnPropertyDescriptor(ctor, 'errorClass')?.value;
  const name = typeof own === 'string' ? own : (ctor as { name?: unknown }).name;
  return Symbol.for('strata-cache.error:' + String(name));
}

/**
 * The one base error of every @strata-cache package.
 *
 * `X.isInstance(e)` is true when `e` is an `X` or a subclass of `X`, also when `e` was built by
 * another copy of core (a duplicate install): each class has a marker in the global symbol
 * registry, and an error carries the markers of its class and every class above it.
 */
export class StrataError extends Error {
  static readonly errorClass: string = 'StrataError';
  readonly code: StrataErrorCode;
  readonly field: string | undefined;

  constructor(code: StrataErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrataError';
    this.code = code;
    this.field = options.field;
    const marks = this as unknown as Record<symbol, boolean>;
    marks[BASE_MARKER] = true;
    for (let c: object | null = new.target; c !== null && c !== Error && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
      marks[markerOf(c)] = true;
    }
  }

  /** True for an instance of this class (or a subclass), from any copy of @strata-cache/core. */
  static isInstance<E extends StrataError>(this: abstract new (...args: never[]) => E, error: unknown): error is E {
    if (typeof error !== 'object' || error === null) return false;
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass isInstance was called on
    const marker = (this as unknown) === StrataError ? BASE_MARKER : markerOf(this);
    return (error as Record<symbol, unknown>)[marker] === true;
  }
}

/** A request that cannot be fingerprinted (circular, too deep, non-serialisable, bad scope...), or an API used out of order. */
export class InvalidRequestError extends StrataError {
  static override readonly errorClass: string = 'InvalidRequestError';
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_INVALID_REQUEST', message, options);
    this.name = 'InvalidRequestError';
  }
}

/** A constructor or call option that is unknown or out of range. */
export class InvalidOptionError extends StrataError {
  static override readonly errorClass: string = 'InvalidOptionError';
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_INVALID_OPTION', message, options);
    this.name = 'InvalidOptionError';
  }
}

/** A layer operation failed; always wrapped, with the layer's own error as `cause`. */
export class LayerError extends StrataError {
  static override readonly errorClass: string = 'LayerError';
  readonly layer: string;
  readonly operation: string;
  constructor(layer: string, operation: string, message: string, options: StrataErrorOptions = {}) {
    super('STRATA_LAYER', message, options);
    this.name = 'LayerError';
    this.layer = layer;
    this.operation = operation;
  }
}

/** A layer did not answer within its time budget. */
export class LayerTimeoutError extends StrataError {
  static override readonly errorClass: string = 'LayerTimeoutError';
  readonly layer: string;
  readonly operation: string;
  readonly budgetMs: number;
  constructor(layer: string, operation: string, budgetMs: number) {
    super('STRATA_LAYER_TIMEOUT', `layer "${layer}" did not finish ${operation} within its ${budgetMs} ms budget (option: budgetMs)`);
    this.name = 'LayerTimeoutError';
    this.layer = layer;
    this.operation = operation;
    this.budgetMs = budgetMs;
  }
}

/** An optional peer dependency (native or heavy) is not installed or did not build. */
export class MissingDependencyError extends StrataError {
  static override readonly errorClass: string = 'MissingDependencyError';
  readonly dependency: string;
  constructor(dependency: string, message: string, options: StrataErrorOptions = {}) {
    super('STRATA_MISSING_DEPENDENCY', message, options);
    this.name = 'MissingDependencyError';
    this.dependency = dependency;
  }
}

/** A stored value could not be decoded (or is not a well-formed entry); callers treat it as a miss. */
export class DecodeError extends StrataError {
  static override readonly errorClass: string = 'DecodeError';
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_DECODE', message, options);
    this.name = 'DecodeError';
  }
}

/**
 * The load a caller joined was abandoned by the caller running it (`PendingLoad.abandon()` without
 * a reason). `started` tells whether chunks had already been handed out: when false, nothing was
 * delivered and the joiner can safely `begin()` again; when true, the joiner's stream is cut.
 */
export class LoadAbandonedError extends StrataError {
  static override readonly errorClass: string = 'LoadAbandonedError';
  readonly started: boolean;
  constructor(message: string, started: boolean) {
    super('STRATA_ABANDONED', message);
    this.name = 'LoadAbandonedError';
    this.started = started;
  }
}

/** The error every operation of a closed cache or layer throws (rule: `STRATA_CLOSED`). */
export function closedError(what: string): StrataError {
  return new StrataError('STRATA_CLOSED', `${what} is closed`);
}
