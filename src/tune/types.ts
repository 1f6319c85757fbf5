/**
 * `svhn tune`'s parts meet here: a search space of train's own flags, samplers that propose a
 * trial's parameters from the study's trials so far, pruners that stop a trial after an epoch,
 * and a store that keeps the study (embedded PGlite, or a PostgreSQL server shared by several
 * machines: one SQL dialect, one code path). The objective is always validation accuracy, to
 * be maximised; a trial's steps are its epochs (1, 2, ...).
 */

/** A value a parameter takes: what `svhn train --config` reads under the flag's name. */
export type ParamValue = number | string | boolean;

/** One searched parameter, named by train's flag (`lr`, `batch-size`, `weight-decay`, ...). */
export type ParamSpec =
  | { name: string; kind: 'float'; low: number; high: number; step?: number }
  | { name: string; kind: 'log-float'; low: number; high: number }
  | { name: string; kind: 'int'; low: number; high: number; step?: number }
  | { name: string; kind: 'choice'; choices: ParamValue[] };

/** The parameters in a fixed order (a space file's order). */
export type Space = ParamSpec[];

/** A trial's parameters, by flag name. */
export type Params = Record<string, ParamValue>;

export type TrialState = 'running' | 'complete' | 'pruned' | 'failed';

/** A trial as samplers, pruners and the results table see it. */
export interface TrialRecord {
  /** 0, 1, 2, ... in the order trials were created in the study. */
  number: number;
  state: TrialState;
  params: Params;
  /** complete: the best validation accuracy of the run; pruned: its last reported one; else null. */
  value: number | null;
  /** Validation accuracy after each epoch reported so far: [epoch (1-based), value], epochs ascending. */
  intermediates: Array<[number, number]>;
}

/** Proposes the next trial's parameters. Deterministic: the same space, trials, number and seed give the same params. */
export interface Sampler {
  readonly name: 'tpe' | 'random' | 'grid';
  /** `trials`: every trial of the study so far (running ones included, so grid does not repeat a point). */
  propose(space: Space, trials: readonly TrialRecord[], number: number, seed: number): Params;
}

/** Decides after an epoch whether a running trial stops there. */
export interface Pruner {
  readonly name: 'asha' | 'median' | 'none';
  /** `trial`: the running one, its intermediates up to and including `step`; `trials`: all of the study's (it may be among them). */
  shouldPrune(trial: TrialRecord, step: number, trials: readonly TrialRecord[]): boolean;
}

/** What a study is: fixed when it is created; opening it again with another model or space is refused. */
export interface StudySpec {
  name: string;
  model: string;
  space: Space;
  sampler: Sampler['name'];
  pruner: Pruner['name'];
  seed: number;
  /** The trials the study ends with (complete + pruned; failed ones are not counted). */
  trials: number;
  /** Train's flags every trial shares (data-dir, limit, epochs, ...), by flag name. */
  fixed: Params;
}

/** A trial this worker holds: only its holder may report on it or finish it. */
export interface ClaimedTrial {
  id: number; // the store's key
  number: number;
  params: Params;
  /** True when it was taken over from a worker that stopped (its checkpoint may let it resume). */
  reclaimed: boolean;
}

/**
 * A study's store. Every method is one transaction; any store passes test/tune/store.suite.ts.
 * Workers are named by strings (host, pid and a random part); a running trial whose holder has
 * not beaten its heart for `staleMs` may be taken over by another worker.
 */
export interface StudyStore {
  readonly kind: 'embedded' | 'postgres';
  /** Creates the study, or opens it when one of that name exists with the same model, space and fixed flags (else a BAD_FLAG error naming what differs). */
  openStudy(spec: StudySpec): Promise<{ id: number; created: boolean; spec: StudySpec }>;
  /** Every trial of the study, by number. */
  trials(studyId: number): Promise<TrialRecord[]>;
  /**
   * The next trial for `worker`: a running trial whose holder is stale (taken over, same number
   * and params), else, while fewer than `target` trials are complete, pruned or running, a new
   * one with `propose(trials)`'s params; undefined when the study needs no more. Two workers
   * never get the same trial, and no more than `target` trials are ever created (failed ones
   * aside).
   */
  claimTrial(studyId: number, worker: string, target: number, propose: (trials: TrialRecord[], number: number) => Params, staleMs: number): Promise<ClaimedTrial | undefined>;
  /** Refreshes the holder's heartbeat; false when the trial is no longer this worker's. */
  heartbeat(trialId: number, worker: string): Promise<boolean>;
  /** Records an epoch's validation accuracy (idempotent per step); false when the trial is no longer this worker's. */
  report(trialId: number, worker: string, step: number, value: number): Promise<boolean>;
  /** Ends the trial (complete, pruned or failed) with its value; false, and nothing changed, when it is no longer this worker's. */
  finish(trialId: number, worker: string, state: Exclude<TrialState, 'running'>, value: number | null): Promise<boolean>;
  /** Gives a held trial back (Ctrl-C): running, holder cleared, so the next claim takes it over at once. */
  release(trialId: number, worker: string): Promise<void>;
  /**
   * Gives back every running trial of the study, whoever held it (holder cleared, as release
   * does). Only for a store one process holds at a time (the embedded one, under its lock):
   * what is running when it opens was left by an earlier run. Returns how many.
   */
  releaseAll(studyId: number): Promise<number>;
  close(): Promise<void>;
}
