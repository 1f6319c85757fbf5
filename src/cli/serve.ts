/**
 * `svhn serve --model DIR [--model DIR ...]`: the models as a local web page and HTTP API.
 * Prints its URL on stdout; logs one line per request on stderr. SIGINT/SIGTERM: stops
 * accepting, lets the requests in flight finish (up to a timeout) and exits 0.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BACKEND_CHOICES, DEFAULTS, NUM_CLASSES } from '../config.js';
import { collect, nonNegativeInt, positiveInt, positiveNumber, threadCount, THREADS_HELP } from './options.js';

interface ServeFlags {
  model: string[];
  host: string;
  port: number;
  bodyLimit: number; // MiB
  maxFiles: number;
  maxPixels: number;
  requestTimeout: number; // seconds
  topK: number;
  batchSize: number;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
}

const S = DEFAULTS.serve;

function port(value: string): number {
  const n = nonNegativeInt(value);
  if (n > 65535) throw new InvalidArgumentError(`expected a port 0..65535 (0: any free port), got '${value}'`);
  return n;
}

function topK(value: string): number {
  const n = positiveInt(value);
  if (n > NUM_CLASSES) throw new InvalidArgumentError(`expected 1..${NUM_CLASSES} (there are ${NUM_CLASSES} digits), got '${value}'`);
  return n;
}

/** Resolves with the signal's name on the first SIGINT/SIGTERM; a second one exits at once. */
async function untilSignal(): Promise<string> {
  const { handleInterruptsWith } = await import('../util/interrupt.js');
  return new Promise((resolve) => {
    let stopping = false;
    handleInterruptsWith((signal) => {
      if (stopping) {
        process.stderr.write(`\nsvhn: ${signal} again: stopping now\n`);
        process.exit(130);
      }
      stopping = true;
      resolve(signal);
    });
  });
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve models as a local web page (upload, webcam) and HTTP API (POST /v1/predict, POST /v1/read)')
    .requiredOption('--model <dir>', 'model directory written by `svhn train` (a digit model, or a reader from `--model reader`); repeat for several, answered side by side (required)', collect)
    .option('--host <host>', 'address to listen on (0.0.0.0: every interface, reachable from the network)', S.host)
    .option('--port <n>', 'port (0: any free port; the printed URL says which)', port, S.port)
    .option('--body-limit <MiB>', 'largest request body, in MiB', positiveNumber, S.bodyLimitMiB)
    .option('--max-files <n>', 'images per request', positiveInt, S.maxFiles)
    .option('--max-pixels <n>', 'largest image, width x height, checked from its header before decoding', positiveInt, S.maxPixels)
    .option('--request-timeout <s>', 'seconds a request may take to arrive whole (slower: 408)', positiveNumber, S.requestTimeoutSec)
    .option('--top-k <k>', `default top_k of /v1/predict (1..${NUM_CLASSES})`, topK, DEFAULTS.predict.topK)
    .option('--batch-size <n>', 'images per prediction batch', positiveInt, DEFAULTS.predict.batchSize)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_CHOICES).default(DEFAULTS.train.backend))
    .option('--threads <n>', THREADS_HELP, threadCount)
    .addHelpText(
      'after',
      `
The page (GET /): drop, pick or paste images, or read digits live from the webcam (in the
browser with tfjs, or on the server); a reader reads whole photos and whole webcam frames.
Everything it needs is served from here: it works offline.
API: POST /v1/predict (digit models), POST /v1/read (readers; multipart files, or one image
body each), GET /v1/models, GET /healthz, GET /openapi.json. Answers are the rows of
\`svhn predict --format jsonl\` and \`svhn read --format jsonl\` for the same images.
SIGINT/SIGTERM: requests in flight get ${S.shutdownTimeoutSec} s to finish, then exit 0.`,
    )
    .action(async (flags: ServeFlags) => {
      const { runServe } = await import('../serve/run.js');
      const { readFileSync } = await import('node:fs');
      const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      await runServe({
        modelDirs: flags.model,
        host: flags.host,
        port: flags.port,
        backend: flags.backend,
        threads: flags.threads,
        version,
        bodyLimitBytes: Math.floor(flags.bodyLimit * 1024 * 1024),
        maxFiles: flags.maxFiles,
        maxPixels: flags.maxPixels,
        topK: flags.topK,
        batchSize: flags.batchSize,
        requestTimeoutMs: flags.requestTimeout * 1000,
        headersTimeoutMs: Math.min(S.headersTimeoutSec, flags.requestTimeout) * 1000,
        keepAliveTimeoutMs: S.keepAliveTimeoutSec * 1000,
        shutdownTimeoutMs: S.shutdownTimeoutSec * 1000,
        onListening: (url) => process.stdout.write(`${url}\n`),
        stop: untilSignal(),
      });
    });
}
