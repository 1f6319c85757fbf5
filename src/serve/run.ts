/**
 * `svhn serve` as one stage call: start the backend, load the models, listen, report the
 * URL, and run until `stop` resolves (the CLI passes one that waits for SIGINT/SIGTERM).
 * Then: stop accepting, let the requests in flight finish for up to shutdownTimeoutMs, close
 * whatever is left, free the models and return.
 */
import type { BackendChoice } from '../config.js';
import { getLogger } from '../log.js';
import { assertModelDir } from '../models/io.js';
import { listenOn } from './listen.js';
import { disposeModels, loadServedModels } from './models.js';
import { buildServer } from './server.js';

export interface ServeOptions {
  modelDirs: string[];
  host: string;
  port: number; // 0: any free port (the URL says which)
  backend: BackendChoice;
  threads?: number;
  version: string;
  bodyLimitBytes: number;
  maxFiles: number;
  maxPixels: number;
  topK: number;
  batchSize: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Told the URL once the server listens. */
  onListening: (url: string) => void;
  /** Resolves when the server should stop (with the reason, for the log). */
  stop: Promise<string>;
}

export interface ServeSummary {
  url: string;
  requests: number;
  /** Connections still open when the shutdown timeout ran out (cut off). */
  cutOff: boolean;
}

export async function runServe(opts: ServeOptions): Promise<ServeSummary> {
  const log = getLogger();
  for (const dir of opts.modelDirs) assertModelDir(dir); // a typo answers before the backend starts
  const { initBackend } = await import('../backend/index.js');
  const backend = await initBackend(opts.backend, { threads: opts.threads }); // first, so the weights live on it
  const models = await loadServedModels(opts.modelDirs);
  try {
    for (const m of models) {
      log.info({ model: m.name, dir: m.dir, task: m.task, architecture: m.metadata.architecture }, `serving ${m.dir} as ${m.name} (${m.task === 'read' ? 'a reader: POST /v1/read' : m.metadata.architecture})`);
      if (m.metadata.synthetic) log.warn(`${m.dir} was trained on the synthetic sample: its ${m.task === 'read' ? 'readings of real photos' : 'predictions on real digits'} mean little`);
    }
    const app = await buildServer({ ...opts, models });
    let requests = 0;
    app.addHook('onResponse', async () => {
      requests++;
    });
    const { url, exposed } = await listenOn(app, opts.host, opts.port);
    log.info({ url, backend: backend.name, threads: backend.threads }, `listening on ${url} (backend ${backend.name})`);
    if (exposed.length > 0) log.warn(`--host ${opts.host}: listening on ${exposed.join(', ')}, not only loopback: the page, the API and the models are open to the network`);
    opts.onListening(url);

    const reason = await opts.stop;
    log.info(`${reason}: finishing the requests in flight (at most ${opts.shutdownTimeoutMs / 1000} s)`);
    let cutOff = false;
    const timer = setTimeout(() => {
      cutOff = true;
      log.warn(`shutdown timeout: closing the connections still open`);
      app.server.closeAllConnections();
    }, opts.shutdownTimeoutMs);
    await app.close();
    clearTimeout(timer);
    log.info({ requests }, `stopped after ${requests} requests`);
    return { url, requests, cutOff };
  } finally {
    disposeModels(models);
  }
}
