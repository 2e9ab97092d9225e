import { StrataError, type StrataErrorCode } from '@strata-cache/core';

/** An error the gateway answers with an HTTP status (a bad request, a failed upstream). */
export class GatewayError extends StrataError {
  static override readonly errorClass: string = 'GatewayError';
  /** HTTP status sent to the caller. */
  readonly status: number;
  /** Provider-style error type (`invalid_request_error`, `authentication_error`, ...). */
  readonly type: string;
  /** Response headers the answer carries besides its content type. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(status: number, type: string, message: string, options: { field?: string; cause?: unknown; headers?: Readonly<Record<string, string>> } = {}) {
    const code: StrataErrorCode = status >= 500 ? 'STRATA_UPSTREAM' : 'STRATA_INVALID_REQUEST';
    const { headers, ...rest } = options;
    super(code, message, rest);
    this.name = 'GatewayError';
    this.status = status;
    this.type = type;
    this.headers = headers;
  }
}

/** The error body in the wire format of the API the caller speaks, so its SDK raises its own error class. */
export function errorBody(api: 'openai' | 'anthropic', status: number, type: string, message: string): Record<string, unknown> {
  if (api === 'anthropic') return { type: 'error', error: { type, message } };
  return { error: { message, type, param: null, code: status === 401 ? 'invalid_api_key' : null } };
}

/** Provider error type of a status. */
export function typeOfStatus(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 408:
      return 'timeout_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 502:
    case 503:
      return 'api_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}
