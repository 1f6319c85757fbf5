/**
 * tune/space.ts: default spaces, space files (JSON and YAML, Optuna's and Ray Tune's forms),
 * their one-line errors, the canonical key and trial seeds.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULTS, LR_SCHEDULES, MODEL_NAMES } from '../../src/config.js';
import { SvhnError } from '../../src/errors.js';
import { listModels } from '../../src/models/registry.js';
import { MAX_AUGMENT_STRENGTH } from '../../src/train/augment.js';
import { checkSpaceFor, defaultSpace, defaultTrial, parseSpace, seedOf, spaceKey, TUNABLE } from '../../src/tune/space.js';
import type { Space } from '../../src/tune/types.js';

/** The SvhnError parseSpace throws for `text` read from `file`. */
function spaceError(text: string, file = 'space.yaml'): SvhnError {
  try {
    parseSpace(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(SvhnError);
    return e as SvhnError;
  }
  throw new Error(`expected ${file} to be refused:\n${text}`);
}

describe('defaultSpace', () => {
  it.each([...listModels()])('%s: a valid space of tunable flags, each one train accepts', (model) => {
    const space = defaultSpace(model);
    expect(space.length).toBeGreaterThanOrEqual(5);
    for (const p of space) expect(TUNABLE).toContain(p.name);
    // Whatever the file form, the default space reads back as itself: every value passes the checks.
    expect(parseSpace(JSON.stringify(space.map(({ kind, ...rest }) => ({ ...rest, type: kind }))), 'default.json')).toEqual(space);
    expect(() => checkSpaceFor(space, { model, epochs: 2 }, 'the default space')).not.toThrow();
    const lr = space.find((p) => p.name === 'lr')!;
    expect(lr.kind).toBe('log-float');
  });

  it('covers every model name; the reader searches neither label smoothing nor augmentation', () => {
    expect([...listModels()].sort()).toEqual([...MODEL_NAMES].sort());
    const names = defaultSpace('reader').map((p) => p.name);
    expect(names).not.toContain('label-smoothing');
    expect(names).not.toContain('augment-strength');
    expect(defaultSpace('resnet').map((p) => p.name)).toContain('label-smoothing');
    expect(defaultSpace('resnet').map((p) => p.name)).toContain('augment-strength');
    expect(defaultSpace('resnet', { augment: false }).map((p) => p.name)).not.toContain('augment-strength');
    expect(defaultSpace('baseline').find((p) => p.name === 'schedule')).toEqual({ name: 'schedule', kind: 'choice', choices: [...LR_SCHEDULES] });
  });
});

describe('defaultTrial', () => {
  it("is train's own recipe for the model and data, in every default space", () => {
    const sample = DEFAULTS.train.syntheticRecipes.optimized;
    expect(defaultTrial(defaultSpace('optimized'), 'optimized', { synthetic: true })).toEqual({
      lr: sample.lr,
      'batch-size': DEFAULTS.train.batchSize,
      schedule: sample.schedule,
      'warmup-epochs': sample.warmupEpochs,
      'weight-decay': sample.weightDecay,
      'label-smoothing': sample.labelSmoothing,
      'augment-strength': DEFAULTS.train.augmentStrength,
    });
    // real data: the notebook's constant 1e-3
    expect(defaultTrial(defaultSpace('optimized'), 'optimized', { synthetic: false })).toMatchObject({ lr: 1e-3, schedule: 'constant' });
    for (const model of MODEL_NAMES) {
      const space = defaultSpace(model);
      const first = defaultTrial(space, model, { synthetic: true });
      expect(first, model).toBeDefined();
      expect(Object.keys(first!), model).toEqual(space.map((p) => p.name));
    }
  });

  it('is undefined where the space leaves the recipe out: a range, a choice or a step that misses it', () => {
    const base = defaultSpace('optimized');
    const swap = (i: number, spec: Space[number]) => base.map((p, j) => (j === i ? spec : p));
    expect(defaultTrial(swap(0, { name: 'lr', kind: 'log-float', low: 3e-3, high: 1e-2 }), 'optimized', { synthetic: true })).toBeUndefined();
    expect(defaultTrial(swap(1, { name: 'batch-size', kind: 'choice', choices: [32, 128] }), 'optimized', { synthetic: true })).toBeUndefined();
    expect(defaultTrial(swap(3, { name: 'warmup-epochs', kind: 'float', low: 0, high: 2, step: 0.3 }), 'optimized', { synthetic: true })).toBeUndefined();
    // narrowed around it: still there, with only the space's own parameters
    expect(defaultTrial([{ name: 'lr', kind: 'log-float', low: 1e-3, high: 3e-3 }], 'optimized', { synthetic: true })).toEqual({ lr: 2e-3 });
  });
});

describe('parseSpace', () => {
  const expected: Space = [
    { name: 'lr', kind: 'log-float', low: 1e-4, high: 1e-2 },
    { name: 'batch-size', kind: 'choice', choices: [32, 64] },
    { name: 'warmup-epochs', kind: 'int', low: 0, high: 2 },
    { name: 'weight-decay', kind: 'float', low: 0, high: 0.1, step: 0.025 },
    { name: 'augment-strength', kind: 'float', low: 0, high: 2 },
  ];

  it('reads the object form (Optuna-style types), JSON', () => {
    const json = JSON.stringify({
      lr: { type: 'float', low: 1e-4, high: 1e-2, log: true },
      'batch-size': { type: 'categorical', choices: [32, 64] },
      'warmup-epochs': { type: 'int', low: 0, high: 2 },
      'weight-decay': { type: 'float', low: 0, high: 0.1, step: 0.025 },
      'augment-strength': { type: 'float', low: 0, high: 2 },
    });
    expect(parseSpace(json, 'space.json')).toEqual(expected);
  });

  it('reads the list form, YAML, with kind, log-float and choice', () => {
    const yaml = [
      '- {name: lr, kind: log-float, low: 1.0e-4, high: 1.0e-2}',
      '- name: batch-size',
      '  kind: choice',
      '  choices: [32, 64]',
      '- {name: warmup-epochs, type: int, low: 0, high: 2}',
      '- {name: weight-decay, type: float, low: 0, high: 0.1, step: 0.025}',
      '- {name: augment-strength, type: float, low: 0, high: 2, log: false}',
    ].join('\n');
    expect(parseSpace(yaml, 'space.yaml')).toEqual(expected);
  });

  it('reads a bare list as a choice, and keeps the file order', () => {
    expect(parseSpace('schedule: [cosine, onecycle]\nlr: {type: log-float, low: 3e-4, high: 3E-3}\n', 's.yml')).toEqual([
      { name: 'schedule', kind: 'choice', choices: ['cosine', 'onecycle'] },
      { name: 'lr', kind: 'log-float', low: 3e-4, high: 3e-3 },
    ]);
  });

  const errors: Array<[string, string, string]> = [
    // [what, file text (YAML), expected message after "--space space.yaml: "]
    ['unknown parameter', 'dropout: {type: float, low: 0, high: 0.5}', "unknown parameter 'dropout'; tune may vary lr, batch-size, schedule, warmup-epochs, weight-decay, label-smoothing, augment-strength"],
    ['epochs, the pruner\'s resource', 'epochs: [5, 10]', "unknown parameter 'epochs'"],
    ['unknown kind', 'lr: {type: normal, low: 0.001, high: 0.01}', "'lr': unknown type 'normal'; expected float, log-float, int or choice (categorical)"],
    ['no type', 'lr: {low: 0.001, high: 0.01}', "'lr': expected a \"type\""],
    ['a type named like an object key', 'lr: {type: constructor, low: 0.001, high: 0.01}', "'lr': unknown type 'constructor'"],
    ['reversed range', 'weight-decay: {type: float, low: 0.1, high: 0.01}', "'weight-decay': reversed range: low 0.1 is above high 0.01"],
    ['empty range', 'augment-strength: {type: float, low: 1, high: 1}', "'augment-strength': empty range: low 1 equals high 1"],
    ['log range at 0', 'lr: {type: float, low: 0, high: 0.01, log: true}', "'lr': a log range must stay above 0, got low 0"],
    ['negative log-float', 'weight-decay: {type: log-float, low: -1, high: 0.1}', "'weight-decay': a log range must stay above 0"],
    ['empty choices', 'batch-size: {type: choice, choices: []}', "'batch-size': empty choices list"],
    ['duplicate name', '- {name: lr, type: log-float, low: 0.0001, high: 0.01}\n- {name: lr, type: log-float, low: 0.001, high: 0.1}', "duplicate parameter 'lr'"],
    ['duplicate key', 'lr: {type: log-float, low: 0.0001, high: 0.01}\nlr: {type: log-float, low: 0.001, high: 0.1}', 'invalid YAML at line 2, column 1: a key is given twice'],
    ['batch size of 0', 'batch-size: {type: int, low: 0, high: 64}', "'batch-size': --batch-size refuses 0; expected a positive integer"],
    ['fractional batch size', 'batch-size: [32, 48.5]', "'batch-size': --batch-size refuses 48.5; expected a positive integer"],
    ['batch size as a float', 'batch-size: {type: float, low: 16, high: 64}', "'batch-size': float does not suit --batch-size; expected int or choice"],
    ['unknown schedule', 'schedule: [cosine, linear]', "'schedule': --schedule refuses 'linear'; expected one of constant, cosine, onecycle"],
    ['label smoothing of 1', 'label-smoothing: {type: float, low: 0, high: 1}', "'label-smoothing': --label-smoothing refuses 1; expected a number from 0 to 0.5"],
    ['augment strength too high', `augment-strength: {type: float, low: 0, high: ${MAX_AUGMENT_STRENGTH + 1}}`, `'augment-strength': --augment-strength refuses ${MAX_AUGMENT_STRENGTH + 1}; expected a number from 0 to ${MAX_AUGMENT_STRENGTH}`],
    ['lr of 0', 'lr: [0, 0.001]', "'lr': --lr refuses 0; expected a number above 0"],
    ['negative weight decay', 'weight-decay: {type: float, low: -0.1, high: 0.1}', "'weight-decay': --weight-decay refuses -0.1; expected a number from 0 to 1"],
    ['negative warm-up', 'warmup-epochs: {type: int, low: -1, high: 2}', "'warmup-epochs': --warmup-epochs refuses -1; expected a number from 0"],
    ['misspelt field', 'lr: {type: float, low: 0.0001, high: 0.01, lgo: true}', "'lr': unknown field 'lgo' for float; expected low, high, step, log"],
    ['text for a number', 'lr: {type: float, low: small, high: 0.01}', "'lr': low: expected a number, got 'small'"],
    ['fractional int bound', 'warmup-epochs: {type: int, low: 0, high: 1.5}', "'warmup-epochs': high: int needs a whole number, got 1.5"],
    ['step that does not divide', 'weight-decay: {type: float, low: 0, high: 0.1, step: 0.03}', "'weight-decay': step 0.03 does not divide the range 0..0.1 into whole steps"],
    ['step and log', 'lr: {type: float, low: 0.0001, high: 0.01, step: 0.001, log: true}', "'lr': step and log cannot be used together"],
    ['log int', 'batch-size: {type: int, low: 16, high: 128, log: true}', "'batch-size': log applies to float only"],
    ['a number, not a parameter', 'lr: 0.001', "'lr': expected an object such as"],
    ['a scalar file', '42', 'expected a list of parameters or an object of them by name'],
    ['no parameters', '{}', 'no parameters; name at least one of lr'],
    ['YAML syntax', 'lr: {type: float, low: 0.001\n', 'invalid YAML at line 2, column 1: Flow map in block collection must be sufficiently indented and end with a }'],
    ['repeated choice', 'batch-size: [32, 64, 32]', "'batch-size': choice 32 is listed twice"],
  ];

  it.each(errors)('refuses %s in one line naming the file', (_what, text, message) => {
    const e = spaceError(text);
    expect(e.code).toBe('BAD_FLAG');
    expect(e.message).not.toContain('\n');
    expect(e.message.startsWith(`--space space.yaml: ${message}`), e.message).toBe(true);
  });

  it("gives JSON files' syntax errors in JSON's terms, with line and column, never quoting the file", () => {
    const e = spaceError('{\n  "lr": {"type": "float", "low": 0.001, "high": 0.01,}\n}', 'my-space.json');
    expect(e.message).toBe('--space my-space.json: invalid JSON at line 2, column 54');
    expect(spaceError('{"lr": {"type": "float"', 'cut.json').message).toBe('--space cut.json: invalid JSON: cut short at the end of the file');
    expect(spaceError('  \n', 'empty.json').message).toBe('--space empty.json: an empty file; expected JSON');
    expect(spaceError('{"lr": [0.001], "lr": [0.01]}', 'twice.json').message).toBe('--space twice.json: invalid JSON at line 1, column 17: a key is given twice');
  });
});

describe('checkSpaceFor', () => {
  it("refuses label smoothing for the reader and a warm-up beyond the run's epochs", () => {
    const smoothing = parseSpace('label-smoothing: {type: float, low: 0, high: 0.1}', 's.yaml');
    expect(() => checkSpaceFor(smoothing, { model: 'reader' }, '--space s.yaml')).toThrow("--space s.yaml: 'label-smoothing' applies to digit models; --model reader trains on whole photos");
    expect(() => checkSpaceFor(smoothing, { model: 'resnet' }, '--space s.yaml')).not.toThrow();
    const strength = parseSpace('augment-strength: {type: float, low: 0, high: 2}', 's.yaml');
    expect(() => checkSpaceFor(strength, { model: 'reader' }, '--space s.yaml')).toThrow("--space s.yaml: 'augment-strength' does nothing for --model reader: it trains on photos as they are");
    expect(() => checkSpaceFor(strength, { model: 'resnet', augment: false }, '--space s.yaml')).toThrow("--space s.yaml: 'augment-strength' does nothing with --no-augment");
    expect(() => checkSpaceFor(strength, { model: 'resnet', augment: true }, '--space s.yaml')).not.toThrow();
    const warmup = parseSpace('warmup-epochs: [0, 1, 4]', 's.yaml');
    expect(() => checkSpaceFor(warmup, { model: 'resnet', epochs: 3 }, '--space s.yaml')).toThrow("--space s.yaml: 'warmup-epochs' reaches 4, beyond --epochs 3");
    expect(() => checkSpaceFor(warmup, { model: 'resnet', epochs: 4 }, '--space s.yaml')).not.toThrow();
  });
});

describe('spaceKey', () => {
  it('is the same for the same space in any file form, and differs when anything differs', () => {
    const a = parseSpace('lr: {type: float, log: true, high: 0.01, low: 0.0001}\nbatch-size: [32, 64]', 'a.yaml');
    const b = parseSpace('[{"name": "lr", "kind": "log-float", "low": 1e-4, "high": 1e-2}, {"kind": "choice", "name": "batch-size", "choices": [32, 64]}]', 'b.json');
    expect(spaceKey(a)).toBe(spaceKey(b));
    const keys = new Set([
      spaceKey(a),
      spaceKey(parseSpace('lr: {type: float, log: true, low: 0.0001, high: 0.02}\nbatch-size: [32, 64]', 'c.yaml')),
      spaceKey(parseSpace('lr: {type: float, log: true, low: 0.0001, high: 0.01}\nbatch-size: [32, 128]', 'd.yaml')),
      spaceKey(parseSpace('lr: {type: float, low: 0.0001, high: 0.01}\nbatch-size: [32, 64]', 'e.yaml')),
      spaceKey(parseSpace('batch-size: [32, 64]\nlr: {type: float, log: true, low: 0.0001, high: 0.01}', 'f.yaml')), // the draw order differs
    ]);
    expect(keys.size).toBe(5);
    expect(JSON.parse(spaceKey(a))).toEqual([
      { name: 'lr', kind: 'log-float', low: 1e-4, high: 1e-2 },
      { name: 'batch-size', kind: 'choice', choices: [32, 64] },
    ]);
  });
});

describe('seedOf', () => {
  it('is a uint31, the same for the same pair, unrelated to neighbouring trials and seeds', () => {
    expect(seedOf(42, 7)).toBe(seedOf(42, 7));
    const seeds = new Set<number>();
    for (let study = 0; study < 20; study++) {
      for (let trial = 0; trial < 50; trial++) {
        const s = seedOf(study, trial);
        expect(Number.isSafeInteger(s) && s >= 0 && s < 2 ** 31).toBe(true);
        seeds.add(s);
      }
    }
    expect(seeds.size).toBe(1000); // no collisions across 20 studies x 50 trials
    expect(seedOf(42, 1)).not.toBe(seedOf(43, 0));
    expect(seedOf(42, 0)).not.toBe(42);
    // Bits look random: about half the low bits set over consecutive trials.
    const ones = Array.from({ length: 200 }, (_, t) => seedOf(1, t) & 1).reduce((a, b) => a + b, 0);
    expect(ones).toBeGreaterThan(70);
    expect(ones).toBeLessThan(130);
  });
});
