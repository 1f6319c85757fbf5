/**
 * `--config FILE`: a command's flags from a JSON object, under the flags' own names
 * (`{"model": "resnet", "batch-size": 128, "augment": false}`), the shape the `args.json` of a
 * trained model takes, so `svhn train --config models/resnet/args.json` runs the same recipe
 * again. Each value goes through its flag's own parser, so it is checked as on the command
 * line; a flag given on the command line wins over the file.
 */
import type { Command, Option } from 'commander';
import { SvhnError } from '../errors.js';
import { readJsonFile } from '../util/json.js';

/** Flags a config file may not set: where the run goes and how it reports, which are this invocation's. */
const NOT_FROM_CONFIG = new Set(['config', 'out', 'force', 'resume', 'json']);

/** Sets cmd's options from the JSON object in `path`, except those given on the command line; `fixed`: keys the command itself sets (the file may only repeat them). Returns cmd.opts(). */
export async function applyConfigFile<T>(cmd: Command, path: string, fixed: Record<string, unknown> = {}): Promise<T> {
  const json = await readJsonFile(path, { code: 'BAD_FLAG' });
  return applyConfigObject<T>(cmd, json, `--config ${path}`, fixed);
}

/** As applyConfigFile, from an object already read; `source` names it in errors (`--config FILE`, a tune trial). */
export function applyConfigObject<T>(cmd: Command, json: unknown, source: string, fixed: Record<string, unknown> = {}): T {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SvhnError('BAD_FLAG', `${source}: expected a JSON object of flags, e.g. {"epochs": 10}`);
  }
  const bad = (key: string, what: string) => new SvhnError('BAD_FLAG', `${source}: "${key}": ${what}`);
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (Object.hasOwn(fixed, key)) {
      // set by the command itself (`train-resnet`'s model): the file may only agree
      if (value !== fixed[key]) throw bad(key, `is ${JSON.stringify(fixed[key])} for \`svhn ${cmd.name()}\`, got ${JSON.stringify(value)}`);
      continue;
    }
    const option = findOption(cmd, key);
    if (!option || NOT_FROM_CONFIG.has(option.attributeName())) {
      throw bad(key, option ? 'is set on the command line only' : `is not a flag of \`svhn ${cmd.name()}\``);
    }
    const name = option.attributeName();
    if (cmd.getOptionValueSource(name) === 'cli') continue; // the command line wins
    let parsed: unknown;
    if (option.required || option.optional) {
      if (value === null || typeof value === 'object') throw bad(key, `expected a value, got ${JSON.stringify(value)}`);
      try {
        parsed = option.parseArg ? option.parseArg(String(value), undefined as never) : String(value);
      } catch (e) {
        throw bad(key, (e as Error).message);
      }
    } else {
      if (typeof value !== 'boolean') throw bad(key, `expected true or false, got ${JSON.stringify(value)}`);
      parsed = value;
    }
    cmd.setOptionValueWithSource(name, parsed, 'config');
  }
  return cmd.opts<T & Record<string, unknown>>();
}

/** The option a key names: `batch-size` (the flag) or `batchSize`; `augment: false` is `--no-augment`. */
function findOption(cmd: Command, key: string): Option | undefined {
  const options = cmd.options as Option[];
  return options.find((o) => o.long === `--${key}` && !o.negate) ?? options.find((o) => o.attributeName() === key && !o.negate) ?? options.find((o) => o.long === `--${key}`);
}
