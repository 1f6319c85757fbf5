/**
 * The HTTP server of `svhn serve` (fastify): the page and its assets, the models' files for
 * the page's in-browser tfjs, and the API.
 *
 *   GET  /                        the page          GET  /v1/models              metadata
 *   GET  /assets/:file            page assets       GET  /v1/models/:name/:file  model.json, weights
 *   GET  /healthz                 liveness          GET  /v1/models/:name/classifier/:file  a reader's digit model
 *   GET  /openapi.json            the API described POST /v1/predict             images -> rows (digit models)
 *   GET  /docs                    the same, a page
 *                                                   POST /v1/read                photos -> numbers (readers)
 *
 * Every refusal is a 4xx JSON body { error, code } with one line naming the problem (and the
 * flag that sets a limit), shaped in errors.ts, whichever layer refuses: a route, fastify's
 * parsers and router (sendError), or Node's HTTP parser and timers (refuseConnection). Limits: a whole request's bytes (Content-Length up front, counted
 * while a multipart body streams), files per request, pixels per image (from its header,
 * before decoding), and how long a request may take to arrive (Node's own timers, which
 * answer 408 and drop the connection).
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { NUM_CLASSES } from '../config.js';
import { getLogger } from '../log.js';
import { loadAssets, PAGE_CSP } from './assets.js';
import { clientErrorOf, errorBody, formatBytes, HttpError, httpErrorOf, MAX_PATH_SEGMENT, rawErrorResponse, type ConnectionError } from './errors.js';
import type { ServedModel } from './models.js';
import { readMultipart } from './multipart.js';
import { openApiDocument } from './openapi.js';
import { DOCS_CSP, renderDocsPage } from './docs.js';
import { predictUploads, type Upload } from './predict.js';
import { readUploads } from './read.js';
import { parseMinConfidence } from '../predict/predict.js';

export interface ServerOptions {
  models: ServedModel[];
  version: string;
  bodyLimitBytes: number;
  maxFiles: number;
  maxPixels: number;
  topK: number; // default top_k
  batchSize: number; // images per model.predict call
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** Raw image bodies: any image/* type, or bytes of unknown type. */
const RAW_TYPES = /^(?:image\/[\w.+-]+|application\/octet-stream)$/;

/** What each task's route is for, in the refusals. */
const TASK_ROUTES = {
  classify: { route: '/v1/predict', what: 'a digit model (32x32 digit crops)' },
  read: { route: '/v1/read', what: 'a reader (whole photos)' },
} as const;

/** ?model=a,b -> those models (in --model order), each of `task`; absent -> every model of `task`. */
function selectModels<T extends ServedModel['task']>(models: ServedModel[], query: string | undefined, task: T): Array<Extract<ServedModel, { task: T }>> {
  const ofTask = models.filter((m): m is Extract<ServedModel, { task: T }> => m.task === task);
  const { route, what } = TASK_ROUTES[task];
  if (query === undefined || query === '') {
    if (ofTask.length === 0) {
      const other = models[0]!;
      throw new HttpError(400, 'WRONG_TASK', `${route} needs ${what}; this server has none (${models.map((m) => m.name).join(', ')}: POST to ${TASK_ROUTES[other.task].route})`);
    }
    return ofTask;
  }
  const wanted = query.split(',').map((s) => s.trim());
  for (const name of wanted) {
    const m = models.find((m) => m.name === name);
    if (!m) throw new HttpError(400, 'UNKNOWN_MODEL', `model '${name.slice(0, 100)}': expected one of ${models.map((m) => m.name).join(', ')}`);
    if (m.task !== task) throw new HttpError(400, 'WRONG_TASK', `model '${m.name}' is ${TASK_ROUTES[m.task].what}, not ${what}: POST to ${TASK_ROUTES[m.task].route}`);
  }
  return ofTask.filter((m) => wanted.includes(m.name));
}

/** A request's files: multipart parts, or one raw image body; at least one. */
async function uploadsOf(req: FastifyRequest, opts: ServerOptions): Promise<Upload[]> {
  const uploads = req.isMultipart() ? await readMultipart(req, opts) : [rawUpload(req.body)];
  if (uploads.length === 0) throw new HttpError(400, 'NO_FILES', 'expected at least one file part in the multipart body');
  return uploads;
}

/** 422 when no file could be read: the first one's error, and the rows. */
function noneRead<R extends { input: string; error: string | null }>(rows: R[], count: number): string {
  const first = rows[0]!;
  return `${first.input}: ${first.error}${count > 1 ? ` (and ${count - 1} more; see rows)` : ''}`;
}

function parseTopK(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > NUM_CLASSES) throw new HttpError(400, 'BAD_TOP_K', `top_k: expected 1..${NUM_CLASSES}, got '${value.slice(0, 20)}'`);
  return n;
}

/** ?min_confidence=P: 0..1, default 0 (never abstain), as `svhn predict --min-confidence`. */
function parseMinConfidenceQuery(value: string | undefined): number {
  if (value === undefined) return 0;
  const p = parseMinConfidence(value);
  if (typeof p === 'string') throw new HttpError(400, 'BAD_MIN_CONFIDENCE', `min_confidence: ${p}`);
  return p;
}

function parseFlag(value: string | undefined, name: string): boolean {
  if (value === undefined || value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new HttpError(400, 'BAD_QUERY', `${name}: expected true or false, got '${value.slice(0, 20)}'`);
}

/**
 * A raw image body as RAW_TYPES' parser left it. A POST with neither Content-Type nor body
 * reaches the route unparsed (fastify skips the parsers when there is nothing to parse).
 */
function rawUpload(body: unknown): Upload {
  if (!Buffer.isBuffer(body)) throw new HttpError(400, 'NO_FILES', 'no image: send multipart files or an image body with Content-Type image/*');
  return { name: 'body', bytes: body };
}

function registerApi(app: FastifyInstance, opts: ServerOptions): void {
  const { models } = opts;
  const doc = openApiDocument(opts.version, opts);
  const started = Date.now();

  app.get('/healthz', async () => ({
    status: 'ok',
    models: models.length,
    tensors: tf.memory().numTensors, // flat across requests: a leak shows here
    rssBytes: process.memoryUsage.rss(),
    uptimeSec: (Date.now() - started) / 1000,
  }));
  app.get('/openapi.json', async () => doc);
  const docsPage = renderDocsPage(doc);
  app.get('/docs', async (_req, reply) => reply.header('content-security-policy', DOCS_CSP).header('x-content-type-options', 'nosniff').type('text/html; charset=utf-8').send(docsPage));
  app.get('/v1/models', async () => ({ models: models.map((m) => ({ name: m.name, task: m.task, metadata: m.metadata })) }));
  const sendFile = (reply: FastifyReply, file: string, bytes: Buffer | undefined, what: string) => {
    if (!bytes) throw new HttpError(404, 'NOT_FOUND', `no file ${file.slice(0, 100)} in ${what}`);
    reply.header('cache-control', 'no-cache').type(file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    return bytes;
  };
  app.get<{ Params: { name: string; file: string } }>('/v1/models/:name/:file', async (req, reply) => {
    const { name, file } = req.params;
    return sendFile(reply, file, models.find((m) => m.name === name)?.files.get(file), `model ${name.slice(0, 100)}`);
  });
  app.get<{ Params: { name: string; file: string } }>('/v1/models/:name/classifier/:file', async (req, reply) => {
    const { name, file } = req.params;
    const m = models.find((m) => m.name === name);
    return sendFile(reply, file, m?.task === 'read' ? m.classifierFiles.get(file) : undefined, `the classifier of reader ${name.slice(0, 100)}`);
  });

  app.post<{ Querystring: Record<string, string | undefined> }>('/v1/predict', async (req, reply) => {
    const chosen = selectModels(models, req.query.model, 'classify');
    const topK = parseTopK(req.query.top_k, opts.topK);
    const withInputs = parseFlag(req.query.inputs, 'inputs');
    const minConfidence = parseMinConfidenceQuery(req.query.min_confidence);
    const uploads = await uploadsOf(req, opts);
    const { response, failed } = await predictUploads(uploads, chosen, { topK, minConfidence, batchSize: opts.batchSize, maxPixels: opts.maxPixels, withInputs });
    if (failed === uploads.length) return reply.code(422).send({ error: noneRead(response.models[0]!.rows, uploads.length), code: 'BAD_IMAGE', ...response });
    return response;
  });

  app.post<{ Querystring: Record<string, string | undefined> }>('/v1/read', async (req, reply) => {
    const chosen = selectModels(models, req.query.model, 'read');
    const minConfidence = parseMinConfidenceQuery(req.query.min_confidence);
    const uploads = await uploadsOf(req, opts);
    const { response, failed } = await readUploads(uploads, chosen, { minConfidence, maxPixels: opts.maxPixels });
    if (failed === uploads.length) return reply.code(422).send({ error: noneRead(response.models[0]!.rows, uploads.length), code: 'BAD_IMAGE', ...response });
    return response;
  });
}

function registerPage(app: FastifyInstance): void {
  const assets = loadAssets();
  const send = (path: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    const asset = assets.get(path);
    if (!asset) throw new HttpError(404, 'NOT_FOUND', `no asset ${path.slice(0, 100)}`);
    reply.header('etag', asset.etag).header('cache-control', 'no-cache').type(asset.type);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return asset.body;
  };
  app.get('/', send('/'));
  app.get<{ Params: { file: string } }>('/assets/:file', (req, reply) => send(`/assets/${req.params.file}`)(req, reply));
}

const routeTables = new WeakMap<FastifyInstance, string[]>();

/** Every route a server registered, as "METHOD /path/{param}" (OpenAPI's form): what /openapi.json must list. */
export function routesOf(app: FastifyInstance): string[] {
  return [...(routeTables.get(app) ?? [])].sort();
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const log = getLogger();
  /** Every refusal fastify has a reply for, from a route, a hook, a body parser or the router. */
  const sendError = (e: FastifyError | HttpError, req: FastifyRequest, reply: FastifyReply) => {
    const err = e instanceof HttpError ? e : httpErrorOf(e, opts, req.url);
    if (err.statusCode >= 500) log.error({ err: e, url: req.url }, `${req.method} ${req.url}: ${e.message}`);
    // A refused body may be unread: close the connection rather than read the rest of it.
    if (err.statusCode === 413) reply.header('connection', 'close');
    return reply.code(err.statusCode).send(errorBody(err));
  };
  /** What Node's HTTP server refuses before there is a request (no reply object): written to the socket, which then closes. */
  const refuseConnection = (e: ConnectionError, socket: Socket) => {
    if (e.code === 'ECONNRESET' || socket.destroyed) return void socket.destroy(); // the client is gone
    const err = clientErrorOf(e, opts);
    log.info({ status: err.statusCode, code: err.code }, `client error ${err.statusCode} ${err.code}: ${err.message}`);
    // As Node does: answer unless a response on this socket has already begun.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) socket.write(rawErrorResponse(err));
    socket.destroy(e);
  };
  const app = Fastify({
    logger: false, // one line per request below, through svhn's pino logger
    bodyLimit: opts.bodyLimitBytes,
    exposeHeadRoutes: false,
    return503OnClosing: true, // after SIGINT/SIGTERM: new requests on kept-alive sockets get 503
    routerOptions: { maxParamLength: MAX_PATH_SEGMENT },
    frameworkErrors: (e, req, reply) => void sendError(e, req, reply), // a URL that does not decode, a segment too long
    clientErrorHandler: refuseConnection,
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: opts.requestTimeoutMs, // the whole request, headers and body: a slow sender gets 408
          headersTimeout: opts.headersTimeoutMs,
          keepAliveTimeout: opts.keepAliveTimeoutMs,
          connectionsCheckingInterval: Math.min(1000, opts.requestTimeoutMs), // how often those timers are checked (Node's default: 30 s)
        },
        handler,
      ),
  });

  const table: string[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) table.push(`${method} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('content-security-policy', PAGE_CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('cross-origin-resource-policy', 'same-origin');
    // A declared length over the limit is refused before a byte of the body is read.
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > opts.bodyLimitBytes) throw new HttpError(413, 'BODY_TOO_LARGE', `request body of ${formatBytes(length)} is over the limit of ${formatBytes(opts.bodyLimitBytes)} (--body-limit)`);
  });
  app.addHook('onResponse', async (req, reply) => {
    const ms = reply.elapsedTime;
    log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: +ms.toFixed(1) }, `${req.method} ${req.url} ${reply.statusCode} ${ms.toFixed(1)} ms`);
  });
  app.setNotFoundHandler(async (req) => {
    throw new HttpError(404, 'NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`);
  });
  app.setErrorHandler(async (e: FastifyError | HttpError, req, reply) => sendError(e, req, reply));

  // Bodies: multipart (files) or one raw image; nothing else (fastify's JSON and text parsers go).
  app.removeAllContentTypeParsers();
  await app.register(multipart, { limits: { files: opts.maxFiles, fileSize: opts.bodyLimitBytes } });
  app.addContentTypeParser(RAW_TYPES, { parseAs: 'buffer', bodyLimit: opts.bodyLimitBytes }, (_req, body, done) => done(null, body));

  registerPage(app);
  registerApi(app, opts);
  return app;
}
