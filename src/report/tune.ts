/**
 * `svhn report --tune DIR`: one self-contained page about a study `svhn tune` ran, drawn from
 * the trials.json it writes (tune/run.ts): the optimisation history, the parameters in
 * parallel coordinates, each parameter's importance, every trial's learning curve and the
 * table of trials, best first, with the line that trains the best trial again. Charts are
 * vega-lite specs rendered to PNG on this machine (charts.ts) and inlined, as the model report
 * does: no script, no network.
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { SYNTHETIC_NOTE } from '../evaluate/outputs.js';
import { SvhnError } from '../errors.js';
import { formatFixed } from '../metrics/classification.js';
import { METADATA_JSON } from '../models/modelDir.js';
import type { ParamSpec, ParamValue, StudySpec, TrialRecord, TrialState } from '../tune/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readRegularFileIfReadable } from '../util/files.js';
import { parseJsonFile } from '../util/json.js';
import { renderVegaLitePng } from './charts.js';
import { CSS, escapeHtml, img, pageHead } from './html.js';
import { BEST_JSON, TRIALS_JSON, trialDir } from '../tune/layout.js';

/** Complete trials below this: the importance is not drawn (a handful of points gives noise, not a ranking). */
export const MIN_TRIALS_FOR_IMPORTANCE = 4;
/** Numeric parameters are cut into at most this many bins of equal count (more bins, more noise). */
const MAX_IMPORTANCE_BINS = 4;

const STATES: TrialState[] = ['complete', 'pruned', 'running', 'failed'];
/** One colour per state on every chart (vega's tableau10 blue, orange, grey, red). */
const STATE_COLORS = ['#4c78a8', '#f58518', '#9d9d9d', '#e45756'];
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** trials.json as tune writes it. */
export interface TuneStudy {
  study: StudySpec;
  trials: TrialRecord[];
}

// ---------------------------------------------------------------------------------------------
// Reading the study

/** Checks trials.json's shape where it enters (STYLE lesson 5); the first problem, named, is an error. */
export function checkStudy(raw: unknown, path: string): TuneStudy {
  const fail = (what: string, got: unknown): never => {
    const kind = got === null ? 'null' : Array.isArray(got) ? 'an array' : typeof got === 'object' ? 'an object' : JSON.stringify(got)?.slice(0, 40) ?? typeof got;
    throw new SvhnError('BAD_INPUT', `cannot read ${path}: expected ${what}, got ${kind}`, { suggestion: 'it is written by `svhn tune`; run it again to rewrite the file' });
  };
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(raw)) return fail('an object { study, trials }', raw);
  const study = raw.study;
  if (!isObject(study)) return fail('"study" to be an object', study);
  if (typeof study.name !== 'string') fail('study.name to be a string', study.name);
  if (typeof study.model !== 'string') fail('study.model to be a string', study.model);
  if (!Array.isArray(study.space)) return fail('study.space to be an array of parameters', study.space);
  study.space.forEach((p: unknown, i) => {
    if (!isObject(p) || typeof p.name !== 'string') return fail(`study.space[${i}] to be a parameter with a name`, p);
    if (p.kind === 'choice') {
      if (!Array.isArray(p.choices) || p.choices.length === 0) fail(`study.space[${i}].choices to be a non-empty array`, p.choices);
    } else if (p.kind === 'float' || p.kind === 'int' || p.kind === 'log-float') {
      if (typeof p.low !== 'number' || typeof p.high !== 'number' || !(p.low <= p.high)) fail(`study.space[${i}] to have numbers low <= high`, [p.low, p.high]);
      if (p.kind === 'log-float' && !((p.low as number) > 0)) fail(`study.space[${i}].low to be > 0 (log-float)`, p.low);
    } else fail(`study.space[${i}].kind to be float, log-float, int or choice`, p.kind);
  });
  if (!Array.isArray(raw.trials)) return fail('"trials" to be an array', raw.trials);
  raw.trials.forEach((t: unknown, i) => {
    if (!isObject(t)) return fail(`trials[${i}] to be an object`, t);
    if (!Number.isInteger(t.number)) fail(`trials[${i}].number to be an integer`, t.number);
    if (!STATES.includes(t.state as TrialState)) fail(`trials[${i}].state to be one of ${STATES.join(', ')}`, t.state);
    if (!isObject(t.params)) fail(`trials[${i}].params to be an object`, t.params);
    if (t.value !== null && typeof t.value !== 'number') fail(`trials[${i}].value to be a number or null`, t.value);
    const pairs = t.intermediates;
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'number' && typeof p[1] === 'number')) {
      fail(`trials[${i}].intermediates to be [[epoch, value], ...]`, pairs);
    }
  });
  return raw as unknown as TuneStudy;
}

/** The study in DIR/trials.json; undefined when the folder has no trials.json. */
export async function readStudy(studyDir: string): Promise<TuneStudy | undefined> {
  const path = join(studyDir, TRIALS_JSON);
  const bytes = await readRegularFileIfReadable(path);
  return bytes && checkStudy(parseJsonFile(bytes, path, { code: 'BAD_INPUT' }), path);
}

/** True when a trial's model was trained on the synthetic sample (its metadata.json says so); trials without one (failed, running) say nothing. */
async function trainedOnSynthetic(studyDir: string, trials: TrialRecord[]): Promise<boolean> {
  for (const t of trials) {
    const path = join(trialDir(studyDir, t.number), METADATA_JSON);
    const bytes = await readRegularFileIfReadable(path);
    if (!bytes) continue;
    const metadata = parseJsonFile(bytes, path, { code: 'BAD_MODEL' }) as { synthetic?: unknown } | null;
    if (metadata?.synthetic === true) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Ranking and importance

const finished = (t: TrialRecord) => (t.state === 'complete' || t.state === 'pruned') && t.value !== null && Number.isFinite(t.value);
const complete = (trials: readonly TrialRecord[]) => trials.filter((t) => t.state === 'complete' && t.value !== null && Number.isFinite(t.value));

/**
 * The trials best first: complete ones by value (the study's objective: higher is better),
 * then pruned ones by their last value (an earlier epoch's: not comparable with a complete
 * one), then running, then failed; the lower number first on a tie.
 */
export function rankTrials(trials: readonly TrialRecord[]): TrialRecord[] {
  const group = (t: TrialRecord) => (t.state === 'complete' && t.value !== null ? 0 : t.state === 'pruned' && t.value !== null ? 1 : t.state === 'running' ? 2 : 3);
  return [...trials].sort((a, b) => group(a) - group(b) || (b.value ?? 0) - (a.value ?? 0) || a.number - b.number);
}

export interface ParamImportance {
  name: string;
  /** Share of the summed importance: the parameters' shares add up to 1. */
  importance: number;
  /** Bias-corrected share of the value's variance its bins explain (epsilon squared, >= 0). */
  explained: number;
  /** The groups the complete trials fell into (bins of its values, or its choices). */
  groups: number;
}

export type ImportanceResult =
  | { status: 'ok'; trials: number; params: ParamImportance[] }
  | { status: 'too-few'; trials: number }
  /** No parameter explains more of the value than chance does (or the value never varied). */
  | { status: 'flat'; trials: number };

/** Each trial's group for one parameter: its choice, or its bin among equal-count bins of the values. */
function groupsOf(spec: ParamSpec, values: ParamValue[]): string[] {
  const numeric = spec.kind !== 'choice' && values.every((v) => typeof v === 'number');
  if (!numeric) return values.map((v) => JSON.stringify(v ?? null));
  const xs = values as number[];
  const sorted = [...xs].sort((a, b) => a - b);
  const n = xs.length;
  const bins = Math.max(2, Math.min(MAX_IMPORTANCE_BINS, Math.floor(n / 3)));
  // Cuts at the quantiles; equal values land in one bin (an int's ties are not split), so a
  // bin may be wider than its share and some bins empty.
  const cuts = Array.from({ length: bins - 1 }, (_, j) => sorted[Math.floor(((j + 1) * n) / bins)]!);
  return xs.map((x) => String(cuts.filter((c) => x >= c).length));
}

/**
 * Each parameter's importance, one parameter at a time: the complete trials are grouped by
 * the parameter (one group per choice; numeric ones in up to 4 bins of equal count, by rank, so
 * a log scale changes nothing), and the share of the value's variance that the group means
 * explain is corrected for the number of groups, epsilon squared (Kelley 1935):
 *
 *   eps2 = (SS_between - (g - 1) * SS_within / (n - g)) / SS_total, 0 when negative
 *
 * (g groups of n trials; plain SS_between / SS_total grows with g by chance alone). The
 * parameters' eps2 are then divided by their sum, so the shares add up to 1, as Optuna's do.
 * Unlike Optuna's default (fANOVA on a random forest) it sees no interactions between
 * parameters; with few trials it is a rough guide. Pruned trials are left out: their values are
 * from earlier epochs.
 */
export function paramImportance(space: readonly ParamSpec[], trials: readonly TrialRecord[]): ImportanceResult {
  const done = complete(trials);
  const n = done.length;
  if (n < MIN_TRIALS_FOR_IMPORTANCE) return { status: 'too-few', trials: n };
  const y = done.map((t) => t.value!);
  const mean = y.reduce((s, v) => s + v, 0) / n;
  const ssTotal = y.reduce((s, v) => s + (v - mean) ** 2, 0);
  if (!(ssTotal > 0)) return { status: 'flat', trials: n };
  const rows = space.map((spec) => {
    const groups = groupsOf(spec, done.map((t) => t.params[spec.name]!));
    const byGroup = new Map<string, number[]>();
    groups.forEach((g, i) => byGroup.set(g, [...(byGroup.get(g) ?? []), y[i]!]));
    const g = byGroup.size;
    let ssBetween = 0;
    for (const vs of byGroup.values()) ssBetween += vs.length * (vs.reduce((s, v) => s + v, 0) / vs.length - mean) ** 2;
    const ssWithin = ssTotal - ssBetween;
    // One group (never varied) explains nothing; one trial per group leaves no within-group spread to judge chance by.
    const explained = g < 2 || n - g < 1 ? 0 : Math.max(0, (ssBetween - ((g - 1) * ssWithin) / (n - g)) / ssTotal);
    return { name: spec.name, explained, groups: g };
  });
  const sum = rows.reduce((s, r) => s + r.explained, 0);
  if (!(sum > 0)) return { status: 'flat', trials: n };
  const params = rows.map((r) => ({ ...r, importance: r.explained / sum })).sort((a, b) => b.importance - a.importance || a.name.localeCompare(b.name));
  return { status: 'ok', trials: n, params };
}

/** A parameter's value as the table and the axes print it: 3 significant digits for floats, small ones as 1.5e-4. */
export function formatParam(v: ParamValue | undefined): string {
  if (v === undefined) return '';
  if (typeof v !== 'number' || Number.isInteger(v)) return String(v);
  if (Math.abs(v) < 1e-3) return v.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(3)));
}

// ---------------------------------------------------------------------------------------------
// Chart specs

/** A chart's title: what it shows; under it, small, the study and model (short, so the title does not widen the chart). */
export interface ChartTitle {
  text: string;
  subtitle: string[];
}

const titleOf = (t: ChartTitle) => ({ text: t.text, subtitle: t.subtitle, subtitleFontSize: 11, subtitleColor: '#59636e' });

/**
 * Optimisation history (Optuna's plot_optimization_history): each finished trial's value by
 * its number, coloured by state, and the best complete value so far as a step line.
 */
export function historySpec(trials: readonly TrialRecord[], title: ChartTitle): TopLevelSpec {
  const points = trials.filter(finished).map((t) => ({ number: t.number, value: t.value, state: t.state }));
  const best: { number: number; best: number }[] = [];
  for (const t of [...complete(trials)].sort((a, b) => a.number - b.number)) {
    best.push({ number: t.number, best: Math.max(t.value!, best.at(-1)?.best ?? -Infinity) });
  }
  const last = Math.max(0, ...trials.map((t) => t.number));
  if (best.length && best.at(-1)!.number < last) best.push({ number: last, best: best.at(-1)!.best }); // the line runs to the last trial
  const x = { field: 'number', type: 'quantitative' as const, title: 'trial', axis: { format: 'd', tickMinStep: 1 }, scale: { domain: [0, Math.max(1, last)] } };
  const y = { type: 'quantitative' as const, title: 'validation accuracy', scale: { zero: false } };
  // One colour scale for the points' states and the line, so the legend names the line too.
  const color = { scale: { domain: ['complete', 'pruned', 'best so far'], range: [STATE_COLORS[0], STATE_COLORS[1], '#2ca02c'] }, legend: { orient: 'bottom' as const, title: null } };
  return {
    $schema: SCHEMA,
    title: titleOf(title),
    width: 460,
    height: 240,
    layer: [
      {
        data: { values: best },
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
        encoding: { x, y: { ...y, field: 'best' }, color: { ...color, datum: 'best so far' } },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 60, opacity: 0.9 },
        encoding: { x, y: { ...y, field: 'value' }, color: { ...color, field: 'state', type: 'nominal' } },
      },
    ],
  } as TopLevelSpec;
}

/** One axis of the parallel coordinates: where a value sits on it (0 bottom, 1 top) and the labels it carries. */
interface Axis {
  name: string;
  position: (t: TrialRecord) => number | undefined;
  ticks: { pos: number; label: string }[];
}

/** The powers of ten in [low, high] (low > 0). */
function decadesBetween(low: number, high: number): number[] {
  const [first, last] = [Math.ceil(Math.log10(low)), Math.floor(Math.log10(high))];
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => 10 ** (first + i));
}

function axisOf(spec: ParamSpec): Axis {
  const at = (t: TrialRecord) => t.params[spec.name];
  if (spec.kind === 'choice') {
    const keys = spec.choices.map((c) => JSON.stringify(c));
    const pos = (i: number) => (spec.choices.length === 1 ? 0.5 : i / (spec.choices.length - 1));
    return {
      name: spec.name,
      position: (t) => {
        const i = keys.indexOf(JSON.stringify(at(t)));
        return i < 0 ? undefined : pos(i);
      },
      ticks: spec.choices.map((c, i) => ({ pos: pos(i), label: formatParam(c) })),
    };
  }
  const log = spec.kind === 'log-float';
  const f = (v: number) => (log ? Math.log(v) : v);
  const span = f(spec.high) - f(spec.low);
  const scale = (v: number) => (span > 0 ? Math.min(1, Math.max(0, (f(v) - f(spec.low)) / span)) : 0.5);
  // the ends, and between them the powers of ten (log) or the middle (an int's only when whole)
  const middle = (spec.low + spec.high) / 2;
  const inner = log ? decadesBetween(spec.low, spec.high) : spec.kind === 'int' && !Number.isInteger(middle) ? [] : [middle];
  const ends = [spec.low, spec.high].map(scale);
  const ticks = [spec.low, ...inner.filter((v) => ends.every((e) => Math.abs(scale(v) - e) > 0.08)), spec.high]; // none crowding an end's label
  return {
    name: spec.name + (log ? ' (log)' : ''),
    position: (t) => {
      const v = at(t);
      return typeof v === 'number' && (!log || v > 0) ? scale(v) : undefined;
    },
    ticks: [...new Set(ticks)].map((v) => ({ pos: scale(v), label: formatParam(v) })),
  };
}

/**
 * Parallel coordinates (Optuna's plot_parallel_coordinate): one line per complete trial across
 * the objective and the parameters, coloured by value. Each axis is the parameter's searched
 * range (log-float ones on a log scale; choices evenly spaced in their order), normalised to
 * [0, 1] here, so the spec needs no fold or window transform; each axis is labelled with its
 * ends (and middle, or its choices).
 */
export function parallelSpec(space: readonly ParamSpec[], trials: readonly TrialRecord[], title: ChartTitle): TopLevelSpec {
  const done = complete(trials);
  const values = done.map((t) => t.value!);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const objective: Axis = {
    name: 'val. accuracy',
    position: (t) => (hi > lo ? (t.value! - lo) / (hi - lo) : 0.5),
    ticks: done.length ? [...new Set([lo, hi])].map((v) => ({ pos: hi > lo ? (v - lo) / (hi - lo) : 0.5, label: formatFixed(v, 3) })) : [],
  };
  const axes = [objective, ...space.map(axisOf)];
  const order = axes.map((a) => a.name);
  const lines = done.flatMap((t) =>
    axes.flatMap((a) => {
      const pos = a.position(t);
      return pos === undefined ? [] : [{ trial: t.number, axis: a.name, pos, value: t.value }];
    }),
  );
  const ticks = axes.flatMap((a) => a.ticks.map((k) => ({ axis: a.name, ...k })));
  const x = { field: 'axis', type: 'nominal' as const, sort: order, title: null, scale: { domain: order, padding: 0.25 }, axis: { labelAngle: -30, labelLimit: 160, domain: false, ticks: false, grid: false } };
  const y = { field: 'pos', type: 'quantitative' as const, scale: { domain: [0, 1] }, axis: null };
  return {
    $schema: SCHEMA,
    title: titleOf(title),
    width: Math.min(600, Math.max(300, 64 * axes.length)),
    height: 260,
    layer: [
      {
        data: { values: axes.map((a) => ({ axis: a.name })) },
        mark: { type: 'rule', color: '#bbbbbb' },
        encoding: { x, y: { datum: 0, type: 'quantitative', scale: { domain: [0, 1] }, axis: null }, y2: { datum: 1 } },
      },
      {
        data: { values: lines },
        mark: { type: 'line', strokeWidth: 1.6, opacity: 0.85 },
        encoding: {
          x,
          y,
          detail: { field: 'trial', type: 'nominal' },
          color: { field: 'value', type: 'quantitative', title: 'val. accuracy', scale: { scheme: 'viridis' }, legend: { format: '.3f', gradientLength: 180 } },
        },
      },
      // the axis labels over the lines: a white outline first, so a line under one does not hide it
      ...['halo', 'label'].map((kind) => ({
        data: { values: ticks },
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: '#222222', ...(kind === 'halo' ? { stroke: 'white', strokeWidth: 3, strokeJoin: 'round' } : {}) },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      })),
    ],
    config: { view: { stroke: null } }, // axes are the rules: no frame around them
  } as TopLevelSpec;
}

/** Importance as horizontal bars, the most important on top, each labelled with its share. */
export function importanceSpec(params: readonly ParamImportance[], title: ChartTitle): TopLevelSpec {
  // each bar says its share and the variance its parameter explains on its own (which the shares hide)
  const rows = params.map((p) => ({ name: p.name, importance: p.importance, label: `${formatFixed(p.importance, 2)} (ε² ${formatFixed(p.explained, 2)})` }));
  const y = { field: 'name', type: 'nominal' as const, sort: rows.map((r) => r.name), title: null };
  const x = { field: 'importance', type: 'quantitative' as const, title: 'share of importance', scale: { domain: [0, 1] } };
  return {
    $schema: SCHEMA,
    title: titleOf(title),
    data: { values: rows },
    width: 360,
    height: { step: 26 },
    encoding: { y, x },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' } },
      { mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 }, encoding: { text: { field: 'label', type: 'nominal' } } },
    ],
  } as TopLevelSpec;
}

/**
 * Every trial's validation accuracy by epoch (Optuna's plot_intermediate_values): coloured by
 * state, pruned ones dashed with a cross at the epoch they were stopped after, the best trial's
 * number written at its end.
 */
export function curvesSpec(trials: readonly TrialRecord[], title: ChartTitle): TopLevelSpec {
  const rows = trials.flatMap((t) => t.intermediates.map(([epoch, valAcc]) => ({ trial: t.number, epoch, valAcc, state: t.state })));
  const stops = trials.filter((t) => t.state === 'pruned' && t.intermediates.length).map((t) => ({ trial: t.number, epoch: t.intermediates.at(-1)![0], valAcc: t.intermediates.at(-1)![1], state: t.state }));
  const best = rankTrials(trials)[0];
  const bestEnd = best && best.state === 'complete' && best.intermediates.length ? [{ epoch: best.intermediates.at(-1)![0], valAcc: best.intermediates.at(-1)![1], label: `best: #${best.number}` }] : [];
  const maxEpoch = Math.max(2, ...rows.map((r) => r.epoch));
  const shown = STATES.filter((s) => rows.some((r) => r.state === s)); // the legend names the states drawn
  const stateScale = { domain: shown, range: shown.map((s) => STATE_COLORS[STATES.indexOf(s)]!) };
  const dashes: Record<TrialState, number[]> = { complete: [1, 0], pruned: [5, 3], running: [2, 2], failed: [1, 0] };
  const x = { field: 'epoch', type: 'quantitative' as const, title: 'epoch', scale: { domain: [1, maxEpoch] }, axis: { tickMinStep: 1, format: 'd' } };
  const y = { field: 'valAcc', type: 'quantitative' as const, title: 'validation accuracy', scale: { zero: false } };
  return {
    $schema: SCHEMA,
    title: titleOf(title),
    width: 460,
    height: 260,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 1.6, opacity: 0.85, point: { size: 16, filled: true } },
        encoding: {
          x,
          y,
          detail: { field: 'trial', type: 'nominal' },
          color: { field: 'state', type: 'nominal', scale: stateScale, legend: { orient: 'bottom' as const, title: null } },
          strokeDash: { field: 'state', type: 'nominal', scale: { domain: shown, range: shown.map((s) => dashes[s]) }, legend: { orient: 'bottom' as const, title: null } },
        },
      },
      {
        data: { values: stops },
        mark: { type: 'point', shape: 'cross', size: 110, filled: true, color: STATE_COLORS[1] },
        encoding: { x, y },
      },
      {
        data: { values: bestEnd },
        mark: { type: 'text', align: 'left', dx: 6, dy: -6, fontSize: 11, fontWeight: 'bold', color: STATE_COLORS[0] },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------
// The page

export interface TuneReportData {
  studyDir: string;
  study: StudySpec;
  trials: TrialRecord[];
  synthetic: boolean;
  createdAt: string;
  importance: ImportanceResult;
  /** PNGs (2x); undefined where there is nothing to draw (no complete trial, no epochs yet). */
  charts: { history?: Buffer; parallel?: Buffer; importance?: Buffer; curves?: Buffer };
  /** DIR/best.json when it is there. */
  bestConfig?: string;
}

const IMPORTANCE_NOTE = (n: number) =>
  `Importance of a parameter: the share of the validation accuracy's variance across the ${n} complete trials that its bins explain ` +
  `(numeric parameters in up to ${MAX_IMPORTANCE_BINS} bins of equal count, choices one bin each), corrected for the number of bins ` +
  `(epsilon squared: (SS between - (bins - 1) x MS within) / SS total, 0 when no more than chance), then divided by the sum over the parameters so the shares add up to 1. ` +
  `One parameter at a time: interactions are not seen (Optuna's default, fANOVA, would see them). Pruned trials are left out. With few trials, a rough guide.`;

/** A path as a shell word: quoted when it holds anything but letters, digits and ./_- */
const shellWord = (s: string) => (/^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function trialsTable(study: StudySpec, trials: TrialRecord[]): string {
  const names = study.space.map((p) => p.name);
  const ranked = rankTrials(trials);
  const bestNumber = ranked[0]?.state === 'complete' ? ranked[0].number : undefined;
  const head = `<tr>${['#', 'state', 'value', 'epochs', ...names].map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = ranked
    .map((t) => {
      // a pruned trial's value is an earlier epoch's: which one, small, under it (the column grows no wider)
      const stoppedAt = t.state === 'pruned' ? `<span class="ci">at epoch ${t.intermediates.at(-1)?.[0] ?? '?'}</span>` : '';
      const cells = [
        `<td class="num">${t.number}</td>`,
        `<td class="state ${t.state}">${t.state}</td>`,
        `<td class="num">${t.value === null ? '' : formatFixed(t.value, 4)}${stoppedAt}</td>`,
        `<td class="num">${t.intermediates.length}</td>`,
        ...names.map((n) => `<td class="num">${escapeHtml(formatParam(t.params[n]))}</td>`),
      ];
      return `<tr class="trial-${t.state}${t.number === bestNumber ? ' winner' : ''}">${cells.join('')}</tr>`;
    })
    .join('\n');
  return `<div class="table-scroll">\n<table class="comparison trials">\n${head}\n${body}\n</table>\n</div>\n<p class="note">Best first: complete trials by value, then pruned ones by the value at the epoch they were stopped after (not comparable with a complete one's), then running and failed ones. Highlighted row: the best trial.</p>`;
}

function describeParam(p: ParamSpec): string {
  if (p.kind === 'choice') return `${p.name}: one of ${p.choices.map(formatParam).join(', ')}`;
  return `${p.name}: ${p.kind} ${formatParam(p.low)} to ${formatParam(p.high)}${'step' in p && p.step ? ` step ${formatParam(p.step)}` : ''}`;
}

/** The page as one string: no script, no external reference. */
export function renderTuneHtml(d: TuneReportData): string {
  const { study, trials } = d;
  const count = (s: TrialState) => trials.filter((t) => t.state === s).length;
  const title = `svhn tune study '${study.name}' (model ${study.model})`;
  const best = rankTrials(trials)[0];
  const bestComplete = best?.state === 'complete' ? best : undefined;
  const fixed = Object.entries(study.fixed ?? {}).map(([k, v]) => `${k}=${formatParam(v)}`).join(', ');
  const facts: [string, string][] = [
    ['folder', d.studyDir],
    ['search', `${study.sampler} sampler, ${study.pruner} pruner, seed ${study.seed}, ${study.trials} trials planned`],
    ['trials', STATES.map((s) => `${count(s)} ${s}`).join(', ')],
    ['best', bestComplete ? `trial ${bestComplete.number}: validation accuracy ${formatFixed(bestComplete.value!, 4)}` : 'no complete trial yet'],
    ['space', study.space.map(describeParam).join('; ')],
    ...(fixed ? ([['fixed flags', fixed]] as [string, string][]) : []),
  ];
  const imp = d.importance;
  const importance =
    imp.status === 'too-few'
      ? `<p class="missing">Too few complete trials to rank the parameters (${imp.trials}; at least ${MIN_TRIALS_FOR_IMPORTANCE} are needed): a ranking from so few would be noise.</p>`
      : imp.status === 'flat'
        ? `<p class="missing">No parameter explains more of the validation accuracy than chance does across the ${imp.trials} complete trials.</p>`
        : `${img(d.charts.importance, 'parameter importance', 2)}\n<p class="note">${escapeHtml(IMPORTANCE_NOTE(imp.trials))}</p>`;
  const command = bestComplete
    ? d.bestConfig
      ? `<p>Train the best trial (${bestComplete.number}) again, its flags and seed as they were:</p>\n<pre>svhn train --config ${escapeHtml(shellWord(d.bestConfig))}</pre>`
      : `<p class="missing">(best.json is not in the folder yet: \`svhn tune\` writes it when a trial ends.)</p>`
    : '';
  return `${pageHead(title, CSS + TUNE_CSS)}
<body>
<h1>${escapeHtml(title)}${d.synthetic ? ' <span class="badge">SYNTHETIC</span>' : ''}</h1>
<p class="meta">Generated ${escapeHtml(d.createdAt)} by svhn report --tune · objective: validation accuracy, higher is better</p>
${d.synthetic ? `<p class="banner">${escapeHtml(SYNTHETIC_NOTE)}</p>` : ''}
<table class="facts">${facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
<h2 id="history">Optimisation history</h2>
${d.charts.history ? img(d.charts.history, 'optimisation history', 2) : '<p class="missing">No trial has finished yet.</p>'}
<p class="note">Each finished trial's value (pruned ones: at the epoch they were stopped after); the line is the best complete value so far.</p>
<h2 id="parallel">Parameters of the complete trials</h2>
${d.charts.parallel ? img(d.charts.parallel, 'parallel coordinates of the complete trials', 2) : '<p class="missing">No complete trial yet.</p>'}
<p class="note">One line per complete trial, coloured by its value; each axis spans the parameter's searched range (log scale where marked), choices in their order.</p>
<h2 id="importance">Parameter importance</h2>
${importance}
<h2 id="curves">Learning curves</h2>
${d.charts.curves ? img(d.charts.curves, 'validation accuracy by epoch of every trial', 2) : '<p class="missing">No trial has reported an epoch yet.</p>'}
<p class="note">Validation accuracy after each epoch. Pruned trials are dashed, with a cross at the epoch they were stopped after.</p>
<h2 id="trials">Trials</h2>
${trialsTable(study, trials)}
${command}
</body>
</html>
`;
}

const TUNE_CSS = `
table.facts th { white-space: nowrap; vertical-align: top; }
td.state.pruned { color: #bc4c00; }
td.state.failed { color: #cf222e; }
td.state.running { color: #59636e; font-style: italic; }
`;

export interface BuildTuneReportOptions {
  /** The study's folder, as `svhn tune --out` wrote it. */
  studyDir: string;
  outFile: string;
}

export interface BuildTuneReportResult {
  outFile: string;
  bytes: number;
  study: string;
  model: string;
  trials: number;
  best: { number: number; value: number } | null;
  importance: ImportanceResult;
  synthetic: boolean;
}

/** Reads the study, draws its charts and writes the page. */
export async function buildTuneReport(opts: BuildTuneReportOptions): Promise<BuildTuneReportResult> {
  const s = await readStudy(opts.studyDir);
  if (!s) throw new SvhnError('BAD_INPUT', `${opts.studyDir}: expected a study folder written by svhn tune (no ${TRIALS_JSON})`);
  const { study: spec, trials } = s;
  const synthetic = await trainedOnSynthetic(opts.studyDir, trials);
  const titled = (what: string, ...more: string[]): ChartTitle => ({ text: `${what}${synthetic ? ' (SYNTHETIC data)' : ''}`, subtitle: [`study '${spec.name}', model ${spec.model}`, ...more] });
  const importance = paramImportance(spec.space, trials);
  const charts: TuneReportData['charts'] = {
    history: trials.some(finished) ? await renderVegaLitePng(historySpec(trials, titled('Optimisation history'))) : undefined,
    parallel: complete(trials).length ? await renderVegaLitePng(parallelSpec(spec.space, trials, titled('Parameters of the complete trials'))) : undefined,
    importance: importance.status === 'ok' ? await renderVegaLitePng(importanceSpec(importance.params, titled('Parameter importance', `epsilon squared over ${importance.trials} complete trials; shares sum to 1`))) : undefined,
    curves: trials.some((t) => t.intermediates.length) ? await renderVegaLitePng(curvesSpec(trials, titled('Learning curves'))) : undefined,
  };
  const bestConfigPath = join(opts.studyDir, BEST_JSON);
  const html = renderTuneHtml({
    studyDir: opts.studyDir,
    study: spec,
    trials,
    synthetic,
    createdAt: new Date().toISOString(),
    importance,
    charts,
    bestConfig: (await readRegularFileIfReadable(bestConfigPath)) ? bestConfigPath : undefined,
  });
  await writeFileAtomic(opts.outFile, html);
  const best = rankTrials(trials)[0];
  return {
    outFile: opts.outFile,
    bytes: Buffer.byteLength(html),
    study: spec.name,
    model: spec.model,
    trials: trials.length,
    best: best?.state === 'complete' ? { number: best.number, value: best.value! } : null,
    importance,
    synthetic,
  };
}
