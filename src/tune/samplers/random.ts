/**
 * Random search (Bergstra and Bengio 2012): each parameter drawn independently, uniform over its
 * range (log-uniform for log-float), a stepped one uniform over its values, a choice uniform
 * over its choices. Also TPE's first trials and every sampler's source of a trial's RNG.
 */
import { Rng } from '../../util/rng.js';
import { mixSeeds, stepCount, stepOf, stepValue } from '../space.js';
import type { ParamSpec, ParamValue, Params, Sampler, Space } from '../types.js';

const SAMPLER_SALT = 0x5a3b1e;

/** Trial `number`'s sampler RNG: from the study seed and the number only, so a trial draws the same whatever ran before it. */
export function trialRng(seed: number, number: number): Rng {
  return new Rng(mixSeeds(seed, number, SAMPLER_SALT));
}

/** One value of `spec`, uniform in its (log-)space or over its values. */
export function drawUniform(spec: ParamSpec, rng: Rng): ParamValue {
  switch (spec.kind) {
    case 'choice':
      return spec.choices[rng.int(spec.choices.length)]!;
    case 'log-float':
      return Math.min(spec.high, Math.exp(rng.uniform(Math.log(spec.low), Math.log(spec.high))));
    case 'float':
    case 'int': {
      const step = stepOf(spec);
      if (step === undefined) return rng.uniform(spec.low, spec.high);
      return stepValue(spec, step, rng.int(stepCount(spec, step)));
    }
  }
}

/** A whole trial's params, drawn in the space's order. */
export function drawParams(space: Space, rng: Rng): Params {
  const params: Params = {};
  for (const spec of space) params[spec.name] = drawUniform(spec, rng);
  return params;
}

export function randomSampler(): Sampler {
  return {
    name: 'random',
    propose: (space, _trials, number, seed) => drawParams(space, trialRng(seed, number)),
  };
}
