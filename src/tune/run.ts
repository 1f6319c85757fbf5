/**
 * `svhn tune`: a study of trials, each a real `svhn train` run (tune/trialWorker.ts, a process
 * of its own) on the study's fixed flags and the parameters its sampler proposes, pruned after
 * an epoch when its pruner says so, kept in a store (tune/store/: PGlite in the study's folder,
 * or a PostgreSQL server several machines share).
 *
 * The study's folder: tune/layout.ts.
 *
 * Ctrl-C: the running trials stop at their last whole checkpoint and are given back to the
 * store; the same command continues the study, resuming them. A trial is counted once: only
 * its holder may finish it (store.ts), and a taken-over one keeps its number and parameters.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SvhnError } from '../errors.js';
import { hasCheckpoint } from '../train/checkpoint.js';
import { checkpointDirFor } from '../train/loop.js';
import { getLogger } from '../log.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { makeDirs } from '../util/mkdirs.js';
import { BEST_JSON, TRIALS_CSV, TRIALS_JSON, trialDir } from './layout.js';
import type { TrialEnd, TrialEpoch, TrialJob } from './trialWorker.js';
import type { ClaimedTrial, Params, Pruner, Sampler, Space, StudySpec, StudyStore, TrialRecord } from './types.js';

export interface TuneOptions {
  model: string;
  /** The study's name (default: the model's). */
  study: string;
  /** The study's folder: trials, trials.csv, best.json, and the embedded store. */
  outDir: string;
  space: Space;
  sampler: Sampler['name'];
  pruner: Pruner['name'];
  /** The trials the study ends with (complete and pruned). */
  trials: number;
  /** No trial starts after this many seconds of this run; running ones finish. */
  budgetSec: number | null;
  workers: number;
  /** Training threads in all; each of the workers trains on its share. */
  threads: number;
  /** undefined: embedded; postgres://...: a server. */
  storage: string | undefined;
  seed: number;
  /** Trial 0's parameters instead of the sampler's (space.ts defaultTrial: train's own recipe), when the study makes its trial 0. */
  first?: Params;
  /** Train's flags every trial of the study shares, by flag name (limit, val-limit, extra, epochs): part of what the study is. */
  fixed: Params;
  /** Train's flags of this machine's trials (data-dir, backend): machines sharing a study may differ in them. */
  local: Params;
  /** A held trial whose heartbeat is older than this is another worker's to take over. */
  staleMs?: number;
  /** Each trial's end, as it happens (the command prints the table's rows). */
  onTrialEnd?: (trial: TrialRecord, info: { wallTimeSec: number; reclaimed: boolean; error?: string }) => void;
  /** Each epoch of each trial. */
  onEpoch?: (number: number, epoch: TrialEpoch, pruned: boolean) => void;
}

export interface TuneSummary {
  study: string;
  outDir: string;
  storage: StudyStore['kind'];
  /** Trials this run finished (complete, pruned or failed). */
  ran: number;
  trials: TrialRecord[];
  best: { number: number; value: number; params: Params; config: string } | null;
  wallTimeSec: number;
  /** The budget ran out before the study had its trials. */
  outOfBudget: boolean;
  interrupted: boolean;
}

const DEFAULT_STALE_MS = 60_000;
/** Failed trials in a row after which the study stops: the same error each time is not worth a night. */
const MAX_FAILURES_IN_A_ROW = 3;

const workerScript = join(dirname(fileURLToPath(import.meta.url)), 'trialWorker.js');

interface Running {
  claim: ClaimedTrial;
  child: ChildProcess;
  done: Promise<void>;
}

export async function runTune(o: TuneOptions): Promise<TuneSummary> {
  const started = Date.now();
  const { makeSampler } = await import('./samplers.js');
  const { makePruner } = await import('./pruners.js');
  const { seedOf } = await import('./space.js');
  const { checkStorage, openStore } = await import('./store/index.js');
  checkStorage(o.storage, o.outDir); // before the study's folder is made
  const sampler = makeSampler(o.sampler);
  const pruner = makePruner(o.pruner);
  if (o.storage === undefined) await makeDirs(o.outDir); // the embedded store lives in it
  const store = await openStore(o.storage, o.outDir); // a server that cannot be reached: nothing made
  await makeDirs(o.outDir);
  const log = getLogger();
  const worker = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const staleMs = o.staleMs ?? DEFAULT_STALE_MS;
  const running = new Map<number, Running>();
  let ran = 0;
  let failuresInARow = 0;
  let lastError: string | undefined;
  let stopping: NodeJS.Signals | undefined;
  let outOfBudget = false;
  const deadline = o.budgetSec === null ? Infinity : started + o.budgetSec * 1000;

  const { handleInterruptsWith } = await import('../util/interrupt.js');
  let wake: (() => void) | undefined;
  const unhandle = handleInterruptsWith((signal) => {
    if (stopping) return;
    stopping = signal;
    process.stderr.write(`\nsvhn: interrupted; stopping ${running.size} trial(s) at their last checkpoint\n`);
    for (const r of running.values()) r.child.kill(signal);
    wake?.();
  });
  try {
    const { id: studyId, created } = await store.openStudy(studySpecOf(o));
    if (store.kind === 'embedded') await store.releaseAll(studyId); // one process holds it (its lock): what was running is an earlier run's
    log.info(`${created ? 'new' : 'continuing'} study '${o.study}' (${store.kind} store, ${o.sampler} sampler, ${o.pruner} pruner), ${o.trials} trials`);

    const propose = (trials: TrialRecord[], number: number): Params => (number === 0 && o.first ? { ...o.first } : sampler.propose(o.space, trials, number, o.seed));

    const startTrial = (claim: ClaimedTrial): Running => {
      const outDir = trialDir(o.outDir, claim.number);
      const job: TrialJob = {
        type: 'job',
        number: claim.number,
        model: o.model,
        values: { ...o.local, ...o.fixed, ...claim.params, seed: seedOf(o.seed, claim.number) },
        outDir,
        resume: hasCheckpoint(checkpointDirFor(outDir)),
        threads: trialThreads(o),
      };
      const child = fork(workerScript, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], detached: true }); // its own group: Ctrl-C reaches it through us, once
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      const trialStarted = Date.now();
      const beat = setInterval(() => {
        store.heartbeat(claim.id, worker).then(
          (mine) => {
            if (!mine && !stopping) {
              log.warn(`trial ${claim.number} was taken over by another worker; stopping this copy`);
              child.kill('SIGTERM');
            }
          },
          () => undefined,
        );
      }, Math.max(50, staleMs / 4));
      let end: TrialEnd | undefined;
      let lastValue: number | null = null;
      const done = new Promise<void>((resolve) => {
        child.on('message', (m: TrialEpoch | TrialEnd) => {
          if (m.type === 'epoch') {
            lastValue = m.valAcc;
            void (async () => {
              let prune = false;
              try {
                await store.report(claim.id, worker, m.epoch, m.valAcc);
                const trials = await store.trials(studyId);
                const me = trials.find((t) => t.number === claim.number);
                prune = me !== undefined && m.epoch < m.epochs && pruner.shouldPrune(me, m.epoch, trials); // the last epoch ends the trial anyway
              } catch (e) {
                log.warn(`trial ${claim.number}: could not reach the store after epoch ${m.epoch} (${(e as Error).message}); it goes on`);
              }
              o.onEpoch?.(claim.number, m, prune);
              if (child.connected) child.send({ type: 'verdict', prune });
            })();
          } else {
            end = m;
          }
        });
        child.on('exit', () => resolve());
      });
      child.send(job);
      const finished = done.then(async () => {
        clearInterval(beat);
        running.delete(claim.number);
        const wallTimeSec = (Date.now() - trialStarted) / 1000;
        if (stopping && (!end || end.type === 'error')) {
          await store.release(claim.id, worker).catch(() => undefined); // the next run takes it over, from its checkpoint
          return;
        }
        let state: 'complete' | 'pruned' | 'failed';
        let value: number | null;
        let error: string | undefined;
        if (end?.type === 'done') [state, value] = ['complete', end.value];
        else if (end?.type === 'pruned') [state, value] = ['pruned', lastValue];
        else {
          [state, value] = ['failed', null];
          error = end?.type === 'error' ? end.message : `the trial's process ended without a result${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`;
        }
        const mine = await store.finish(claim.id, worker, state, value);
        if (!mine) return; // taken over meanwhile: the other worker counts it
        // A pruned trial is over: its curve is in the store, and its checkpoint (weights and
        // Adam's moments, 3x the model) would only fill the disk over a long study.
        if (state === 'pruned') await rm(checkpointDirFor(outDir), { recursive: true, force: true }).catch(() => undefined);
        ran++;
        if (state === 'failed') {
          failuresInARow++;
          lastError = error;
        } else failuresInARow = 0;
        const record: TrialRecord = { number: claim.number, state, params: claim.params, value, intermediates: [] };
        o.onTrialEnd?.(record, { wallTimeSec, reclaimed: claim.reclaimed, error });
        await writeResults(store, studyId, o).catch((e: unknown) => log.warn(`could not write ${TRIALS_CSV} or ${BEST_JSON}: ${(e as Error).message}`));
      });
      const r: Running = { claim, child, done: finished };
      running.set(claim.number, r);
      return r;
    };

    for (;;) {
      if (stopping) break;
      if (failuresInARow >= MAX_FAILURES_IN_A_ROW) break;
      // fill the free slots
      while (!stopping && running.size < o.workers && Date.now() < deadline) {
        const claim = await store.claimTrial(studyId, worker, o.trials, propose, staleMs);
        if (!claim) break;
        if (claim.reclaimed) log.info(`trial ${claim.number}: taken over from a worker that stopped`);
        startTrial(claim);
      }
      if (Date.now() >= deadline && running.size === 0) {
        const trials = await store.trials(studyId);
        outOfBudget = trials.filter((t) => t.state === 'complete' || t.state === 'pruned').length < o.trials;
        break;
      }
      if (running.size === 0) {
        // Nothing to claim: done, unless another worker still holds trials (it may stop; ours then)
        const others = (await store.trials(studyId)).some((t) => t.state === 'running');
        if (!others) break;
      }
      const tick = new Promise<void>((r) => {
        wake = r;
        setTimeout(r, running.size === 0 ? Math.max(50, staleMs / 4) : 1000).unref();
      });
      await Promise.race([tick, ...[...running.values()].map((r) => r.done)]);
    }
    await Promise.all([...running.values()].map((r) => r.done));
    if (failuresInARow >= MAX_FAILURES_IN_A_ROW && !stopping) {
      throw new SvhnError('BAD_INPUT', `${MAX_FAILURES_IN_A_ROW} trials in a row failed; the last: ${lastError}`, { suggestion: 'run `svhn train` with these flags to see the error whole' });
    }
    const trials = await writeResults(store, studyId, o);
    const best = bestOf(trials);
    return {
      study: o.study,
      outDir: o.outDir,
      storage: store.kind,
      ran,
      trials,
      best: best ? { number: best.number, value: best.value!, params: best.params, config: join(o.outDir, BEST_JSON) } : null,
      wallTimeSec: (Date.now() - started) / 1000,
      outOfBudget,
      interrupted: stopping !== undefined,
    };
  } finally {
    unhandle();
    await store.close().catch(() => undefined);
    if (stopping) {
      process.stderr.write(`svhn: interrupted; run the same command to continue the study (its running trials resume from their checkpoints)\n`);
      process.exit(stopping === 'SIGINT' ? 130 : 143);
    }
  }
}

/** The complete trial with the highest value; the lower number on a tie. */
export function bestOf(trials: readonly TrialRecord[]): TrialRecord | undefined {
  let best: TrialRecord | undefined;
  for (const t of trials) if (t.state === 'complete' && t.value !== null && (!best || t.value > best.value!)) best = t;
  return best;
}

/** Each trial's training threads: the run's, shared by its workers. */
function trialThreads(o: TuneOptions): number {
  return Math.max(1, Math.floor(o.threads / o.workers));
}

function studySpecOf(o: TuneOptions): StudySpec {
  return { name: o.study, model: o.model, space: o.space, sampler: o.sampler, pruner: o.pruner, seed: o.seed, trials: o.trials, fixed: o.fixed };
}

/** trials.csv, trials.json and best.json, from the store's trials (so every worker's are in them); returns those trials. */
async function writeResults(store: StudyStore, studyId: number, o: TuneOptions): Promise<TrialRecord[]> {
  const { seedOf } = await import('./space.js');
  const trials = await store.trials(studyId);
  const names = o.space.map((p) => p.name);
  const cell = (v: unknown) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v === null || v === undefined ? '' : String(v));
  const rows = trials.map((t) => [t.number, t.state, t.value ?? '', t.intermediates.length, ...names.map((n) => t.params[n])].map(cell).join(','));
  await writeFileAtomic(join(o.outDir, TRIALS_CSV), [['number', 'state', 'value', 'epochs', ...names].join(','), ...rows].join('\n') + '\n');
  await writeJsonAtomic(join(o.outDir, TRIALS_JSON), { study: studySpecOf(o), trials });
  const best = bestOf(trials);
  if (best) {
    // the trial's seed and thread count too: `svhn train --config best.json` repeats it bit for bit
    await writeJsonAtomic(join(o.outDir, BEST_JSON), { model: o.model, ...o.local, ...o.fixed, ...best.params, seed: seedOf(o.seed, best.number), threads: trialThreads(o) });
  }
  return trials;
}
