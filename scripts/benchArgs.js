/**
 * The benchmarks' flags: node:util's parseArgs (strict), with a bad flag (unknown, its value
 * missing, a value where none goes, a stray argument) answered in one line that names the
 * benchmark and the flag and lists the flags it takes, exit 2, no stack trace.
 */
import { parseArgs } from 'node:util';

/** Writes `bench:NAME: message` to stderr and exits with 2. */
export function benchFail(name, message) {
  process.stderr.write(`bench:${name}: ${message}\n`);
  process.exit(2);
}

/** parseArgs({ options })'s values for this process's arguments, or one line and exit 2. */
export function benchArgs(name, options, args = process.argv.slice(2)) {
  try {
    return parseArgs({ args, options, strict: true }).values;
  } catch (e) {
    if (!(e instanceof Error) || !String(e.code ?? '').startsWith('ERR_PARSE_ARGS')) throw e;
    // parseArgs' first sentence names the flag; its advice about '--' does not apply here
    const first = e.message.split(/\.\s/)[0].replace(/\.$/, '');
    const flags = Object.entries(options).map(([k, o]) => `--${k}${o.type === 'string' ? ' V' : ''}`).join(' ');
    benchFail(name, `${first} (it takes: ${flags})`);
  }
}
