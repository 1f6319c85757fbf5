/**
 * svhn's entry point: builds the commander program, registers one file per subcommand and
 * owns the single top-level error handler (STYLE lesson 6). Subcommand files import their
 * stage modules lazily inside their actions, so `svhn --help` and flag errors answer fast.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { formatError, isSvhnError } from '../errors.js';
import { createLogger, type LogFormat } from '../log.js';
import { installInterruptHandler } from '../util/interrupt.js';
import { printableLines } from '../util/text.js';
import { registerDownload } from './download.js';
import { registerPreprocess } from './preprocess.js';
import { registerTrain } from './train.js';
import { registerEvaluate } from './evaluate.js';
import { registerPredict } from './predict.js';
import { registerRead } from './read.js';
import { registerReport } from './report.js';
import { registerDemo } from './demo.js';
import { registerServe } from './serve.js';
import { registerInfo } from './info.js';
import { registerExport } from './export.js';
import { registerTune } from './tune.js';
import { oneOf } from './options.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface GlobalOptions {
  verbose: boolean;
  logFormat?: LogFormat;
}

export function buildProgram(): Command {
  const program = new Command('svhn')
    .description('Train, evaluate and use Street View House Numbers digit classifiers with TensorFlow.js')
    .version(pkg.version)
    .option('--verbose', 'debug logging and stack traces on errors', false)
    .option('--log-format <format>', 'log format: pretty or json (default: pretty on a TTY, json otherwise)', oneOf(['pretty', 'json'] as const))
    .configureHelp({ showGlobalOptions: true })
    // commander's own flag errors: one line, prefixed like ours (inherited by subcommands); they quote the flag's value.
    .configureOutput({ outputError: (str, write) => write(`svhn: ${printableLines(str.trimEnd())}\n`) })
    .exitOverride();

  program.hook('preAction', async (_cmd, action) => {
    const g = action.optsWithGlobals() as GlobalOptions;
    await createLogger({ format: g.logFormat, level: g.verbose ? 'debug' : 'info' });
  });

  for (const register of [registerDownload, registerPreprocess, registerTrain, registerTune, registerEvaluate, registerPredict, registerRead, registerReport, registerExport, registerInfo, registerServe, registerDemo]) {
    register(program);
  }
  // Subcommands inherit exitOverride so flag errors reach our handler instead of process.exit.
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** A reader that went away (`svhn predict ... | head`) is a normal end, not an error. */
function isBrokenPipe(e: unknown): boolean {
  for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
    if ((c as NodeJS.ErrnoException).code === 'EPIPE') return true;
  }
  return false;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Ctrl-C / kill: remove tracked temporary files, one line, exit 130 / 143.
  installInterruptHandler();
  // Without a listener, an EPIPE on stdout is an unhandled 'error' event that crashes with a stack.
  process.stdout.on('error', (e) => {
    if (isBrokenPipe(e)) process.exit(0);
  });
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version "errors" are normal exits; commander already printed its message.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isBrokenPipe(e)) return 0;
    // One line; an unexpected (non-domain) error says where to get the stack.
    const hint = !verbose && !isSvhnError(e) ? ' (run with --verbose for the stack trace)' : '';
    process.stderr.write(`svhn: error: ${formatError(e)}${hint}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(printableLines(e.stack) + '\n');
    return isSvhnError(e) ? e.exitCode : 1;
  }
}

const code = await main(process.argv);
// tfjs backends may hold worker threads or timers; the CLI's work is done, so exit explicitly.
process.exit(code);
