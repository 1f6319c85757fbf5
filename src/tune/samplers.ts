/**
 * `svhn tune --sampler tpe|random|grid`: the samplers that propose a trial's parameters, one
 * file each under samplers/. Every one is deterministic: trial `number`'s draws come from an
 * RNG seeded by (study seed, number) alone, so a sequential study run again with the same
 * seed proposes the same trials, whatever other studies or failed runs came in between.
 */
import { SvhnError } from '../errors.js';
import type { Sampler } from './types.js';
import { gridSampler } from './samplers/grid.js';
import { randomSampler } from './samplers/random.js';
import { tpeSampler, type TpeOptions } from './samplers/tpe.js';

export { checkGridSpace, gridSize } from './samplers/grid.js';
export { TPE_DEFAULTS, type TpeOptions } from './samplers/tpe.js';

export const SAMPLER_NAMES = ['tpe', 'random', 'grid'] as const satisfies ReadonlyArray<Sampler['name']>;

/** The sampler `name`; `tpe` takes Optuna's defaults unless `tpe` overrides them (tests, benchmarks). */
export function makeSampler(name: Sampler['name'], opts: { tpe?: Partial<TpeOptions> } = {}): Sampler {
  switch (name) {
    case 'tpe':
      return tpeSampler(opts.tpe);
    case 'random':
      return randomSampler();
    case 'grid':
      return gridSampler();
    default:
      throw new SvhnError('BAD_FLAG', `--sampler: expected one of ${SAMPLER_NAMES.join(', ')}, got '${String(name)}'`);
  }
}
