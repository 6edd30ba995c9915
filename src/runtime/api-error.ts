import type { StatusBody } from './kube-object.js';

/** Reasons the API server uses when a body does not name one, by HTTP status. */
const reasonByCode: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/**
 * A request the API server refused, carrying the fields of its `metav1.Status` body.
 * `reason` is the server's CamelCase reason (`Conflict`, `NotFound`, `AlreadyExists`, `Expired`,
 * `Gone`, `Invalid`, ...), or one derived from `code` when the body had none.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** HTTP status code, e.g. 409. */
  readonly code: number;
  /** CamelCase reason from the Status body. */
  readonly reason: string;
  /** The Status body's `details` (field causes for Invalid, the object name for NotFound). */
  readonly details?: StatusBody['details'];

  /**
   * @param code - HTTP status.
   * @param status - parsed Status body, if the response had one.
   * @param request - `"VERB path"`, prefixed to the message so the error names what failed.
   */
  constructor(code: number, status: StatusBody | undefined, request?: string) {
    const reason = status?.reason || reasonByCode[code] || 'Unknown';
    const serverMessage = status?.message || `HTTP ${code}`;
    super(request ? `${request}: ${serverMessage}` : serverMessage);
    this.code = code;
    this.reason = reason;
    this.details = status?.details;
  }
}

/** Whether `err` is an {@link ApiError} with HTTP status `code`. */
function hasCode(err: unknown, code: number): err is ApiError {
  return err instanceof ApiError && err.code === code;
}

/** A write lost an optimistic-concurrency race (stale resourceVersion or precondition): re-read and retry. */
export function isConflict(err: unknown): err is ApiError {
  return hasCode(err, 409) && err.reason !== 'AlreadyExists';
}

/** The object (or the resource type) does not exist. */
export function isNotFound(err: unknown): err is ApiError {
  return hasCode(err, 404);
}

/** A create hit an existing object of the same name. */
export function isAlreadyExists(err: unknown): err is ApiError {
  return hasCode(err, 409) && err.reason === 'AlreadyExists';
}

/** The resourceVersion asked for is older than the server keeps (reason `Expired` or `Gone`): relist. */
export function isGone(err: unknown): err is ApiError {
  return hasCode(err, 410);
}

/** The object failed validation (HTTP 422); `details.causes` names the fields. */
export function isInvalid(err: unknown): err is ApiError {
  return hasCode(err, 422);
}
