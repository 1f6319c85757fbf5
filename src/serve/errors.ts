/**
 * The refusals of `svhn serve`, in one place: every failure becomes an HttpError (a status, a
 * code a client can switch on, one line naming the problem and the flag that sets a limit),
 * and every refusal's body is errorBody's { error, code }, which the README and the OpenAPI
 * document's Error schema promise. Three ways in:
 *
 *   httpErrorOf    fastify's and @fastify/multipart's errors, and the router's (a URL that
 *                  does not decode, a path segment over MAX_PATH_SEGMENT)
 *   clientErrorOf  what Node's HTTP server refuses before fastify has a request: malformed
 *                  HTTP, headers over Node's limit, a request not received in time
 *   new HttpError  the routes' own
 */
import type { FastifyError } from 'fastify';
import { maxHeaderSize, STATUS_CODES } from 'node:http';

/** A refusal with its status and a code a client can switch on. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the messages name: the limits and the flags that set them. */
export interface ErrorLimits {
  bodyLimitBytes: number;
  maxFiles: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
}

/** Longest path segment the router matches (a model or file name); fastify's default. */
export const MAX_PATH_SEGMENT = 100;

const MIB = 1024 * 1024;

/** 1048576 -> "1 MiB", 512 -> "512 bytes" (limits as the flags set them). */
export const formatBytes = (n: number) => (n >= MIB ? `${+(n / MIB).toFixed(2)} MiB` : `${n} bytes`);

/** A client's text in a message: at most n characters. */
const clip = (s: string, n = 100) => (s.length > n ? `${s.slice(0, n)}...` : s);

/** The body of every refusal. */
export const errorBody = (e: HttpError) => ({ error: e.message, code: e.code });

/** fastify's, @fastify/multipart's and the router's errors, reworded to name the limit and its flag. */
export function httpErrorOf(e: FastifyError, limits: ErrorLimits, url: string): HttpError {
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return new HttpError(413, 'BODY_TOO_LARGE', `request body is over the limit of ${formatBytes(limits.bodyLimitBytes)} (--body-limit)`);
    case 'FST_FILES_LIMIT':
      return new HttpError(413, 'TOO_MANY_FILES', `request has more than ${limits.maxFiles} files (--max-files)`);
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new HttpError(413, 'TOO_MANY_PARTS', `request has more than ${limits.maxFiles} files or too many form fields (--max-files)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'expected Content-Type multipart/form-data, image/* or application/octet-stream');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'BAD_CONTENT_LENGTH', 'Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return new HttpError(400, 'BAD_URL', `URL path '${clip(url.split('?')[0]!)}' does not decode (bad percent-encoding)`);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new HttpError(414, 'URL_TOO_LONG', `URL path '${clip(url.split('?')[0]!)}': a segment is over ${MAX_PATH_SEGMENT} characters`);
  }
  const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
  return status === 500
    ? new HttpError(500, 'INTERNAL', 'internal error (see the server log)')
    : new HttpError(status, e.code ?? 'BAD_REQUEST', clip(e.message.split('\n')[0] ?? e.message, 300));
}

/** An error Node's HTTP server raises on a connection ('clientError'): a parser error carries its reason. */
export interface ConnectionError extends Error {
  code?: string;
  reason?: string;
}

/** Node's HTTP parser and request timers, in words: 408, 431, or 400 for HTTP that does not parse. */
export function clientErrorOf(e: ConnectionError, limits: ErrorLimits): HttpError {
  if (e.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Node raises the same error for headers (headersTimeoutMs) and for the whole request.
    const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;
    const within =
      limits.headersTimeoutMs < limits.requestTimeoutMs
        ? `in time: its headers within ${seconds(limits.headersTimeoutMs)}, all of it within ${seconds(limits.requestTimeoutMs)}`
        : `whole within ${seconds(limits.requestTimeoutMs)}`;
    return new HttpError(408, 'REQUEST_TIMEOUT', `request not received ${within} (--request-timeout)`);
  }
  if (e.code === 'HPE_HEADER_OVERFLOW') {
    return new HttpError(431, 'HEADERS_TOO_LARGE', `request headers are over the limit of ${+(maxHeaderSize / 1024).toFixed(1)} KiB (Node's --max-http-header-size)`);
  }
  return new HttpError(400, 'BAD_HTTP', `malformed HTTP request: ${clip((e.reason ?? e.message).split('\n')[0]!, 200)}`);
}

/** A whole response for a socket fastify has no reply for: errorBody, then the connection closes. */
export function rawErrorResponse(e: HttpError): string {
  const body = JSON.stringify(errorBody(e));
  return [
    `HTTP/1.1 ${e.statusCode} ${STATUS_CODES[e.statusCode] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
