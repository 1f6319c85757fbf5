/**
 * The files of a multipart/form-data body. The boundary is checked where the body enters
 * (present, 1..70 characters as RFC 2046 allows) and the parser's own failures (a body that
 * never uses its boundary, or ends before the closing one) become 400 BAD_MULTIPART naming
 * the boundary; busboy's limits keep their codes and become 413s in the error handler.
 */
import type { FastifyRequest } from 'fastify';
import { formatBytes, HttpError } from './errors.js';
import type { Upload } from './predict.js';

export interface MultipartLimits {
  bodyLimitBytes: number;
  maxFiles: number;
}

const MAX_BOUNDARY = 70; // RFC 2046 section 5.1.1

const badMultipart = (message: string) => new HttpError(400, 'BAD_MULTIPART', message);

/** The boundary parameter of a multipart Content-Type (quoted or not). */
export function multipartBoundary(contentType: string): string {
  const m = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/i.exec(contentType);
  if (!m) throw badMultipart('Content-Type multipart/form-data has no boundary parameter (expected multipart/form-data; boundary=...)');
  const boundary = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!;
  if (boundary.length < 1 || boundary.length > MAX_BOUNDARY) throw badMultipart(`multipart boundary of ${boundary.length} characters: expected 1..${MAX_BOUNDARY} (RFC 2046)`);
  return boundary;
}

/**
 * A parser error in words. busboy's are plain Errors without a code: "Unexpected end of
 * multipart data" (from the body, or from a part cut off by the end).
 */
function parseError(e: unknown, boundary: string, partsSeen: number): HttpError {
  const message = e instanceof Error ? e.message : String(e);
  if (/unexpected end of multipart data/i.test(message)) {
    return badMultipart(
      partsSeen === 0 ? `multipart body: found no complete part with the boundary '${boundary}' of its Content-Type` : `multipart body: ends without its closing boundary '--${boundary}--'`,
    );
  }
  return badMultipart(`multipart body: ${(message.split('\n')[0] ?? message).slice(0, 200)}`);
}

/** The files of a multipart body, counting bytes as they arrive (multipart has no aggregate limit of its own). */
export async function readMultipart(req: FastifyRequest, limits: MultipartLimits): Promise<Upload[]> {
  const boundary = multipartBoundary(req.headers['content-type'] ?? '');
  const uploads: Upload[] = [];
  let total = 0;
  let partsSeen = 0;
  const tooLarge = (what: string) => new HttpError(413, 'BODY_TOO_LARGE', `${what} is over the limit of ${formatBytes(limits.bodyLimitBytes)} (--body-limit)`);
  const parts = req.parts({ limits: { files: limits.maxFiles, fileSize: limits.bodyLimitBytes, fields: 32, parts: limits.maxFiles + 32, fieldSize: 64 * 1024 } });
  try {
    for await (const part of parts) {
      partsSeen++;
      if (part.type !== 'file') continue; // form fields are ignored
      const chunks: Buffer[] = [];
      for await (const chunk of part.file as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > limits.bodyLimitBytes) throw tooLarge('request body');
        chunks.push(chunk);
      }
      if (part.file.truncated) throw tooLarge(`file ${part.filename}`);
      uploads.push({ name: part.filename || part.fieldname, bytes: Buffer.concat(chunks) });
    }
  } catch (e) {
    // Ours, and fastify's and @fastify/multipart's (limits, a closed request), carry a code.
    if (e instanceof HttpError || (e instanceof Error && 'code' in e)) throw e;
    throw parseError(e, boundary, partsSeen);
  }
  return uploads;
}
