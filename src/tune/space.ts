/**
 * `svhn tune`'s search space: which of train's flags a study varies, and over what. Parameters
 * are named by the flags themselves (`lr`, `batch-size`, ...), so a trial's params are a
 * `svhn train --config` object as they stand. A space comes from defaultSpace(model) or from a
 * file (--space) in the forms Optuna and Ray Tune users already write; every value a space can
 * yield is one train accepts, checked here, where the file enters (STYLE lesson 5).
 */
import { parseDocument } from 'yaml';
import { DEFAULTS, LR_SCHEDULES, defaultRecipe } from '../config.js';
import { SvhnError } from '../errors.js';
import { MAX_AUGMENT_STRENGTH } from '../train/augment.js';
import type { ParamSpec, ParamValue, Params, Space } from './types.js';

/** The flags tune may vary. Not --epochs: a trial's epochs are the pruner's resource, not a searched value. */
export const TUNABLE = ['lr', 'batch-size', 'schedule', 'warmup-epochs', 'weight-decay', 'label-smoothing', 'augment-strength'] as const;
export type TunableFlag = (typeof TUNABLE)[number];

/**
 * What train accepts for each tunable flag (train/loop.ts checkOptions, cli/train.ts' parsers):
 * the kinds a space may give it and the values it takes. A numeric range is checked at its
 * ends (every value between them is then accepted too); a choice list value by value.
 */
interface FlagRule {
  kinds: ReadonlyArray<ParamSpec['kind']>;
  accepts: (v: ParamValue) => boolean;
  expected: string; // "expected <this>, got ..."
}

const isNumber = (v: ParamValue): v is number => typeof v === 'number' && Number.isFinite(v);
const numeric = ['float', 'log-float', 'int', 'choice'] as const;

const RULES: Record<TunableFlag, FlagRule> = {
  lr: { kinds: numeric, accepts: (v) => isNumber(v) && v > 0, expected: 'a number above 0' },
  'batch-size': { kinds: ['int', 'choice'], accepts: (v) => isNumber(v) && Number.isSafeInteger(v) && v > 0, expected: 'a positive integer' },
  schedule: { kinds: ['choice'], accepts: (v) => (LR_SCHEDULES as readonly ParamValue[]).includes(v), expected: `one of ${LR_SCHEDULES.join(', ')}` },
  'warmup-epochs': { kinds: numeric, accepts: (v) => isNumber(v) && v >= 0, expected: 'a number from 0' },
  'weight-decay': { kinds: numeric, accepts: (v) => isNumber(v) && v >= 0 && v <= 1, expected: 'a number from 0 to 1' },
  'label-smoothing': { kinds: numeric, accepts: (v) => isNumber(v) && v >= 0 && v <= 0.5, expected: 'a number from 0 to 0.5' },
  'augment-strength': { kinds: numeric, accepts: (v) => isNumber(v) && v >= 0 && v <= MAX_AUGMENT_STRENGTH, expected: `a number from 0 to ${MAX_AUGMENT_STRENGTH}` },
};

// ---------------------------------------------------------------- default spaces

/**
 * The space `svhn tune --model MODEL` searches without --space. Ranges centre on each model's
 * own recipe (config.ts DEFAULTS.train.recipes) and reach about a factor of 10 either side
 * where the literature does:
 * - lr, log-uniform 1e-4..1e-2: Adam's 1e-3 sits in the middle in log space; the resnet's
 *   cosine peak 2e-3 and fine-tuning's 1e-4 are inside. The reader trains a detector on whole
 *   photos with its own loss: 3e-4..6e-3 around its 2e-3 (above that its first epochs diverge).
 * - batch-size 32, 64, 128: train's 64 and one power of two either side; 128 photos of the
 *   reader still fit in memory.
 * - schedule: all three of train/schedule.ts.
 * - warmup-epochs 0..2 by 0.5: the recipes use 0 or 1; it shapes the cosine schedule only.
 * - weight-decay 0..0.1: 0 is plain Adam, 0.05 the resnet's, 0.1 the top of AdamW's usual
 *   range for convnets (Loshchilov and Hutter 2019).
 * - label-smoothing 0..0.2 for the digit models (0.1 is Szegedy et al.'s; 10 classes leave
 *   little to gain above 0.2). None for the reader: photos have no class to smooth.
 * - augment-strength 0..2: 1 is train's default; 2 already shifts 4 px and turns 20 degrees
 *   (MAX_AUGMENT_STRENGTH, 3, is allowed in a space file). None for the reader: it trains on
 *   photos as they are; none when the study fixes `augment: false` (`on.augment`): the strength
 *   of no augmentation is no parameter.
 * Floats without a step, so the grid sampler needs a --space file of its own (checkGridSpace).
 * Any other model name gets the digit models' space.
 */
export function defaultSpace(model: string, on: { augment?: boolean } = {}): Space {
  const reader = model === 'reader';
  const space: Space = [
    reader ? { name: 'lr', kind: 'log-float', low: 3e-4, high: 6e-3 } : { name: 'lr', kind: 'log-float', low: 1e-4, high: 1e-2 },
    { name: 'batch-size', kind: 'choice', choices: [32, 64, 128] },
    { name: 'schedule', kind: 'choice', choices: [...LR_SCHEDULES] },
    { name: 'warmup-epochs', kind: 'float', low: 0, high: 2, step: 0.5 },
    { name: 'weight-decay', kind: 'float', low: 0, high: 0.1 },
  ];
  if (!reader) space.push({ name: 'label-smoothing', kind: 'float', low: 0, high: 0.2 });
  if (!reader && on.augment !== false) space.push({ name: 'augment-strength', kind: 'float', low: 0, high: 2 });
  return space;
}

// ---------------------------------------------------------------- the default recipe as trial 0

/**
 * Train's own recipe for this model and data (config.ts defaultRecipe, train's batch size and
 * augmentation strength) as a trial's parameters: the point a study measures first, as Optuna's
 * enqueue_trial and Ray Tune's points_to_evaluate do, so that its table starts from the recipe
 * it is asked to beat and TPE learns from it. Only `space`'s own parameters; undefined where
 * the recipe lies outside the space (a narrowed --space), since a trial must be a point of it.
 */
export function defaultTrial(space: Space, model: string, on: { synthetic: boolean }): Params | undefined {
  const r = defaultRecipe(model, on);
  const recipe: Record<TunableFlag, ParamValue> = {
    lr: r.lr,
    'batch-size': DEFAULTS.train.batchSize,
    schedule: r.schedule,
    'warmup-epochs': r.warmupEpochs,
    'weight-decay': r.weightDecay,
    'label-smoothing': r.labelSmoothing,
    'augment-strength': DEFAULTS.train.augmentStrength,
  };
  const params: Params = {};
  for (const spec of space) {
    const v = recipe[spec.name as TunableFlag];
    if (v === undefined || !inSpace(spec, v)) return undefined;
    params[spec.name] = v;
  }
  return params;
}

/** Whether `v` is one of the values `spec` takes (on its step, for a stepped one). */
function inSpace(spec: ParamSpec, v: ParamValue): boolean {
  if (spec.kind === 'choice') return spec.choices.includes(v);
  if (typeof v !== 'number' || v < spec.low || v > spec.high) return false;
  const step = stepOf(spec);
  return step === undefined || Math.abs((v - spec.low) / step - Math.round((v - spec.low) / step)) < 1e-9;
}

// ---------------------------------------------------------------- space files

/**
 * Reads a space file (--space FILE), YAML or JSON, in either form Optuna and Ray Tune users know:
 *
 *   - {name: lr, type: float, low: 1.0e-4, high: 1.0e-2, log: true}     # a list, in order
 *   - {name: batch-size, type: categorical, choices: [32, 64, 128]}
 *
 *   lr: {type: log-float, low: 1.0e-4, high: 1.0e-2}                   # or an object by name
 *   batch-size: {kind: choice, choices: [32, 64]}
 *   schedule: [constant, cosine]                                        # a bare list: a choice
 *
 * Kinds: float (with `log: true`: log-float), log-float, int, choice (or categorical); `step`
 * for float and int. The order of the file is the order the samplers draw in. Every problem
 * is one line: `--space FILE: ...`.
 */
export function parseSpace(text: string, file: string): Space {
  const bad = (what: string) => new SvhnError('BAD_FLAG', `--space ${file}: ${what}`);
  const doc = readDocument(text, file, bad);
  if (!Array.isArray(doc) && !isPlainObject(doc)) {
    throw bad(`expected a list of parameters or an object of them by name, e.g. {"lr": {"type": "float", "low": 0.0001, "high": 0.01, "log": true}}`);
  }
  const entries: Array<[string | undefined, unknown]> = Array.isArray(doc) ? doc.map((item) => [undefined, item]) : Object.entries(doc);
  if (entries.length === 0) throw bad('no parameters; name at least one of ' + TUNABLE.join(', '));
  const space: Space = [];
  const seen = new Set<string>();
  entries.forEach(([key, raw], i) => {
    const spec = readParam(key, raw, i, bad);
    if (seen.has(spec.name)) throw bad(`duplicate parameter '${spec.name}'`);
    seen.add(spec.name);
    space.push(spec);
  });
  return space;
}

/**
 * The file's value: JSON (by its extension; its errors in JSON's terms) or YAML. Errors say
 * where, and never quote the file's bytes (V8's JSON messages do).
 */
function readDocument(text: string, file: string, bad: (what: string) => SvhnError): unknown {
  const json = /\.json$/i.test(file);
  const format = json ? 'JSON' : 'YAML';
  if (text.trim() === '') throw bad(`an empty file; expected ${format}`);
  if (json) {
    try {
      JSON.parse(text);
    } catch (e) {
      const message = (e as Error).message;
      const at = / at position (\d+)/.exec(message);
      const position = at ? Number(at[1]) : undefined;
      if (/Unexpected end of JSON input/.test(message) || position === text.length) throw bad('invalid JSON: cut short at the end of the file');
      throw bad(`invalid JSON${position !== undefined ? ` at ${lineColumn(text, position)}` : ''}`);
    }
  }
  // YAML reads JSON too and, unlike JSON.parse, refuses a key given twice.
  const doc = parseDocument(text, { prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const reason = err.code === 'DUPLICATE_KEY' ? 'a key is given twice' : err.message.split('\n')[0];
    throw bad(`invalid ${format} at ${lineColumn(text, err.pos[0])}: ${reason}`);
  }
  try {
    return doc.toJS();
  } catch (e) {
    throw bad(`invalid ${format}: ${(e as Error).message.split('\n')[0]}`); // an alias to no anchor
  }
}

/** "line L, column C" (1-based) of a character offset. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  return `line ${before.split('\n').length}, column ${offset - before.lastIndexOf('\n')}`;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const FIELDS: Record<ParamSpec['kind'], readonly string[]> = {
  float: ['low', 'high', 'step', 'log'],
  'log-float': ['low', 'high', 'log'],
  int: ['low', 'high', 'step'],
  choice: ['choices'],
};
const KIND_NAMES: Record<string, ParamSpec['kind']> = { float: 'float', 'log-float': 'log-float', int: 'int', choice: 'choice', categorical: 'choice' };

/** One parameter: its name (the object form's key, or `name`), kind, range or choices, checked against train's flag. */
function readParam(key: string | undefined, raw: unknown, index: number, bad: (what: string) => SvhnError): ParamSpec {
  if (key !== undefined && Array.isArray(raw)) raw = { type: 'choice', choices: raw };
  const at = key !== undefined ? `'${key}'` : `parameter ${index + 1}`;
  if (!isPlainObject(raw)) throw bad(`${at}: expected an object such as {"type": "float", "low": 0, "high": 1}, got ${show(raw)}`);
  const nameField = raw.name;
  if (key !== undefined && nameField !== undefined && nameField !== key) throw bad(`'${key}': its name field says ${show(nameField)}`);
  const name = key ?? nameField;
  if (typeof name !== 'string' || name === '') throw bad(`${at}: expected a "name", one of ${TUNABLE.join(', ')}`);
  if (!(TUNABLE as readonly string[]).includes(name)) {
    throw bad(`unknown parameter '${name}'; tune may vary ${TUNABLE.join(', ')}${name === 'epochs' ? ' (epochs are the pruner\'s resource: give --epochs)' : ''}`);
  }
  const kind = readKind(name, raw, bad);
  const rule = RULES[name as TunableFlag];
  if (!rule.kinds.includes(kind)) throw bad(`'${name}': ${kind} does not suit --${name}; expected ${rule.kinds.join(' or ')}`);
  const spec = kind === 'choice' ? readChoices(name, raw.choices, bad) : readRange(name, kind, raw, bad);
  checkValues(name as TunableFlag, spec, bad);
  return spec;
}

/** The parameter's kind from `type` or `kind` (and `log`), its other fields checked against the kind's. */
function readKind(name: string, raw: Record<string, unknown>, bad: (what: string) => SvhnError): ParamSpec['kind'] {
  const p = `'${name}'`;
  const typeField = raw.type ?? raw.kind;
  if (raw.type !== undefined && raw.kind !== undefined && raw.type !== raw.kind) throw bad(`${p}: type ${show(raw.type)} and kind ${show(raw.kind)} disagree`);
  if (typeField === undefined) throw bad(`${p}: expected a "type": float, log-float, int or choice`);
  let kind = typeof typeField === 'string' && Object.hasOwn(KIND_NAMES, typeField) ? KIND_NAMES[typeField]! : undefined;
  if (kind === undefined) throw bad(`${p}: unknown type ${show(typeField)}; expected float, log-float, int or choice (categorical)`);
  if (raw.log !== undefined && typeof raw.log !== 'boolean') throw bad(`${p}: log: expected true or false, got ${show(raw.log)}`);
  if (raw.log === true && kind === 'int') throw bad(`${p}: log applies to float only; give int a step, or use a choice`);
  if (raw.log === true && raw.step !== undefined) throw bad(`${p}: step and log cannot be used together`);
  if (raw.log === true && kind === 'float') kind = 'log-float';
  if (raw.log === false && kind === 'log-float') throw bad(`${p}: log-float with log: false`);
  for (const field of Object.keys(raw)) {
    if (field !== 'name' && field !== 'type' && field !== 'kind' && !FIELDS[kind].includes(field)) {
      throw bad(`${p}: unknown field '${field}' for ${kind}; expected ${FIELDS[kind].join(', ')}`);
    }
  }
  return kind;
}

function readChoices(name: string, choices: unknown, bad: (what: string) => SvhnError): ParamSpec {
  const p = `'${name}'`;
  if (!Array.isArray(choices)) throw bad(`${p}: choice needs a "choices" list, got ${show(choices)}`);
  if (choices.length === 0) throw bad(`${p}: empty choices list`);
  const values: ParamValue[] = [];
  for (const c of choices) {
    if (!(typeof c === 'string' || typeof c === 'boolean' || (typeof c === 'number' && Number.isFinite(c)))) throw bad(`${p}: choices must be numbers, strings or booleans, got ${show(c)}`);
    if (values.includes(c)) throw bad(`${p}: choice ${show(c)} is listed twice`);
    values.push(c);
  }
  return { name, kind: 'choice', choices: values };
}

function readRange(name: string, kind: 'float' | 'log-float' | 'int', raw: Record<string, unknown>, bad: (what: string) => SvhnError): ParamSpec {
  const p = `'${name}'`;
  const num = (field: string): number | undefined => {
    const v = raw[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${p}: ${field}: expected a number, got ${show(v)}`);
    if (kind === 'int' && !Number.isSafeInteger(v)) throw bad(`${p}: ${field}: int needs a whole number, got ${v}`);
    return v;
  };
  const low = num('low');
  const high = num('high');
  const step = num('step');
  if (low === undefined || high === undefined) throw bad(`${p}: ${kind} needs "low" and "high"`);
  if (low > high) throw bad(`${p}: reversed range: low ${low} is above high ${high}`);
  if (low === high) throw bad(`${p}: empty range: low ${low} equals high ${high}; use a choice of one value, or fix it with a train flag`);
  if (kind === 'log-float') {
    if (low <= 0) throw bad(`${p}: a log range must stay above 0, got low ${low}`);
    return { name, kind, low, high };
  }
  if (step !== undefined) {
    if (step <= 0) throw bad(`${p}: step: expected a number above 0, got ${step}`);
    const n = (high - low) / step;
    if (Math.abs(n - Math.round(n)) > 1e-9 * Math.max(1, n)) throw bad(`${p}: step ${step} does not divide the range ${low}..${high} into whole steps`);
  }
  return step === undefined ? { name, kind, low, high } : { name, kind, low, high, step };
}

/** Every value the spec may yield is one train accepts: a range at both ends, a choice each. */
function checkValues(name: TunableFlag, spec: ParamSpec, bad: (what: string) => SvhnError): void {
  const rule = RULES[name];
  const values = spec.kind === 'choice' ? spec.choices : [spec.low, spec.high];
  for (const v of values) {
    if (!rule.accepts(v)) throw bad(`'${name}': --${name} refuses ${show(v)}; expected ${rule.expected}`);
  }
}

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v));

/**
 * Checks a space against the study's model and fixed flags before any trial runs, so that no
 * trial fails on a value train would refuse, and no parameter is searched that does nothing:
 * the reader takes no label smoothing (train refuses it for photos) and never augments, a
 * strength means nothing with `augment: false`, and no warm-up may outlast the run's --epochs.
 * `from`: where the space came from, for the message ('--space FILE' or 'the default space').
 */
export function checkSpaceFor(space: Space, on: { model: string; epochs?: number; augment?: boolean }, from: string): void {
  for (const spec of space) {
    const most = spec.kind === 'choice' ? spec.choices.filter((v): v is number => typeof v === 'number').reduce((a, b) => Math.max(a, b), 0) : spec.high;
    if (spec.name === 'label-smoothing' && on.model === 'reader' && most > 0) {
      throw new SvhnError('BAD_FLAG', `${from}: 'label-smoothing' applies to digit models; --model reader trains on whole photos`);
    }
    if (spec.name === 'augment-strength' && (on.model === 'reader' || on.augment === false)) {
      throw new SvhnError('BAD_FLAG', `${from}: 'augment-strength' does nothing ${on.model === 'reader' ? 'for --model reader: it trains on photos as they are' : 'with --no-augment'}`);
    }
    if (spec.name === 'warmup-epochs' && on.epochs !== undefined && most > on.epochs) {
      throw new SvhnError('BAD_FLAG', `${from}: 'warmup-epochs' reaches ${most}, beyond --epochs ${on.epochs}`);
    }
  }
}

// ---------------------------------------------------------------- keys and seeds

/**
 * The space as canonical JSON: each parameter's fields in one fixed order, parameters in the
 * space's order (the order samplers draw in, so a reordered file is another space). Two spaces
 * are the same study's when their keys are equal.
 */
export function spaceKey(space: Space): string {
  return JSON.stringify(
    space.map((s) =>
      s.kind === 'choice'
        ? { name: s.name, kind: s.kind, choices: s.choices }
        : { name: s.name, kind: s.kind, low: s.low, high: s.high, ...('step' in s && s.step !== undefined ? { step: s.step } : {}) },
    ),
  );
}

/** Chris Wellons' lowbias32 integer hash: every input bit moves about half the output bits. */
function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d);
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * A uint32 mixed from a study seed, a trial number and a salt naming the stream (training
 * seed, sampler, grid order), so that the streams of one trial, and of neighbouring trials or
 * seeds, are unrelated. Depends on nothing else: trial 7 draws the same whatever ran before it.
 */
export function mixSeeds(seed: number, number: number, salt: number): number {
  return hash32((hash32((seed >>> 0) ^ hash32(salt >>> 0)) + Math.imul(number >>> 0, 0x9e3779b9)) >>> 0);
}

const TRAINING_SEED_SALT = 0x5eed;

/**
 * Trial `trialNumber`'s training seed (train's --seed): a uint31 (0 .. 2^31-1, so any parser
 * of non-negative ints takes it) hashed from the study seed and the trial number. Equal for
 * the same pair, unrelated across trials and studies, and never the study seed's neighbour's:
 * trial 1 of seed 42 is not trial 0 of seed 43.
 */
export function seedOf(studySeed: number, trialNumber: number): number {
  return mixSeeds(studySeed, trialNumber, TRAINING_SEED_SALT) >>> 1;
}

// ---------------------------------------------------------------- values of a parameter

/** The spacing of a stepped parameter's values: its step, 1 for an int without one; undefined for a continuous one. */
export function stepOf(spec: ParamSpec): number | undefined {
  if (spec.kind === 'int') return spec.step ?? 1;
  if (spec.kind === 'float') return spec.step;
  return undefined;
}

/** How many values a stepped parameter takes: low, low + step, ..., high. */
export function stepCount(spec: ParamSpec & { low: number; high: number }, step: number): number {
  return Math.round((spec.high - spec.low) / step) + 1;
}

/** The k-th value of a stepped parameter, without float noise (0.1 + 2 * 0.1 is 0.3, not 0.30000000000000004). */
export function stepValue(spec: ParamSpec & { low: number; high: number }, step: number, k: number): number {
  const v = spec.low + k * step;
  return spec.kind === 'int' ? Math.round(v) : Math.min(spec.high, Number(v.toPrecision(12)));
}
