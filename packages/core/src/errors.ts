const MARKER = Symbol.for('strata-cache.error');

/** Stable codes; match on `code` (or `name`), never on message text. */
export type StrataErrorCode =
  | 'STRATA_INVALID_REQUEST'
  | 'STRATA_INVALID_OPTION'
  | 'STRATA_LAYER'
  | 'STRATA_LAYER_TIMEOUT'
  | 'STRATA_MISSING_DEPENDENCY'
  | 'STRATA_CLOSED'
  | 'STRATA_DECODE'
  | 'STRATA_UPSTREAM';

export interface StrataErrorOptions {
  cause?: unknown;
  /** The option, request field or path the error is about. */
  field?: string;
}

/**
 * The one base error of every @strata-cache package.
 * `StrataError.isInstance` works across duplicate installs (it checks a global symbol,
 * not the prototype chain), so a layer built against another copy of core still matches.
 */
export class StrataError extends Error {
  readonly [MARKER] = true;
  readonly code: StrataErrorCode;
  readonly field: string | undefined;

  constructor(code: StrataErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrataError';
    this.code = code;
    this.field = options.field;
  }

  static isInstance(error: unknown): error is StrataError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** A request that cannot be fingerprinted (circular, non-serialisable, bad scope...). */
export class InvalidRequestError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_INVALID_REQUEST', message, options);
    this.name = 'InvalidRequestError';
  }
}

/** A constructor or call option that is unknown or out of range. */
export class InvalidOptionError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_INVALID_OPTION', message, options);
    this.name = 'InvalidOptionError';
  }
}

/** A layer operation failed; always wrapped, with the layer's own error as `cause`. */
export class LayerError extends StrataError {
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
  readonly dependency: string;
  constructor(dependency: string, message: string, options: StrataErrorOptions = {}) {
    super('STRATA_MISSING_DEPENDENCY', message, options);
    this.name = 'MissingDependencyError';
    this.dependency = dependency;
  }
}

/** A stored value could not be decoded; callers treat it as a miss. */
export class DecodeError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_DECODE', message, options);
    this.name = 'DecodeError';
  }
}
