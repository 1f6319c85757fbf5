/**
 * The study store's contract, one suite for every backend (STYLE lesson 19; Optuna's
 * testing/storages.py): store.test.ts runs it on the embedded store and on a PostgreSQL server.
 * Each test makes its own study (a random name), so a server's database may be reused.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { SvhnError } from '../../src/errors.js';
import type { ClaimedTrial, Params, StudySpec, StudyStore, TrialRecord } from '../../src/tune/types.js';

export interface StoreSuiteOptions {
  /**
   * A second store on the same database, as another machine opens it (its own connections).
   * Absent (the embedded store, one process at a time): the one store serves every worker.
   */
  openPeer?: () => Promise<StudyStore>;
  /** Why the suite cannot run here: each test is skipped with this note. */
  skip?: string;
}

export function studySpec(overrides: Partial<StudySpec> = {}): StudySpec {
  return {
    name: `study-${randomUUID().slice(0, 8)}`,
    model: 'optimized',
    space: [
      { name: 'lr', kind: 'log-float', low: 1e-4, high: 0.1 },
      { name: 'batch-size', kind: 'choice', choices: [32, 64, 128] },
      { name: 'dropout', kind: 'float', low: 0, high: 0.5, step: 0.05 },
    ],
    sampler: 'tpe',
    pruner: 'asha',
    seed: 42,
    trials: 4,
    fixed: { epochs: 3, limit: 2000, augment: true },
    ...overrides,
  };
}

/** A proposal that records what it was given: params name the number, so a taken-over trial's params can be told apart. */
function recordingPropose() {
  const calls: Array<{ seen: number[]; number: number }> = [];
  const propose = (trials: TrialRecord[], number: number): Params => {
    calls.push({ seen: trials.map((t) => t.number), number });
    return { lr: 0.001 * (number + 1), 'batch-size': 64, dropout: 0.1 };
  };
  return { propose, calls };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LONG = 3_600_000; // a staleMs under which nothing goes stale during a test

export function storeSuite(name: string, open: () => Promise<StudyStore>, opts: StoreSuiteOptions = {}): void {
  describe(`study store: ${name}`, () => {
    let store: StudyStore;
    let peer: StudyStore; // the store itself when there is no openPeer

    beforeAll(async () => {
      if (opts.skip) return;
      store = await open();
      peer = opts.openPeer ? await opts.openPeer() : store;
    });
    afterAll(async () => {
      if (peer && peer !== store) await peer.close();
      if (store) await store.close();
    });
    const skipped = (ctx: TestContext) => {
      if (opts.skip) ctx.skip(opts.skip);
    };

    it('creates a study, then opens the same one (its trial target, sampler, pruner and seed may change)', async (ctx) => {
      skipped(ctx);
      const spec = studySpec();
      const made = await store.openStudy(spec);
      expect(made.created).toBe(true);
      expect(made.spec).toEqual(spec);
      const again = await peer.openStudy({ ...spec, trials: 50, sampler: 'random', pruner: 'none', seed: 7 });
      expect(again).toEqual({ id: made.id, created: false, spec }); // the spec it was made with
      // The same fields written in another order, fixed flags too: the same study.
      const reordered = await store.openStudy({ ...spec, fixed: { augment: true, limit: 2000, epochs: 3 }, space: spec.space.map((p) => ({ ...p })) });
      expect(reordered.id).toBe(made.id);
      const other = await store.openStudy(studySpec());
      expect(other.created).toBe(true);
      expect(other.id).not.toBe(made.id);
    });

    it('a study outlives its store: closed, opened again, its trials are there', async (ctx) => {
      skipped(ctx);
      const spec = studySpec();
      const { id } = await store.openStudy(spec);
      const claim = (await store.claimTrial(id, 'w1', 4, recordingPropose().propose, LONG))!;
      await store.report(claim.id, 'w1', 1, 0.5);
      await store.finish(claim.id, 'w1', 'complete', 0.5);
      if (peer === store) {
        await store.close();
        store = peer = await open();
      } else {
        await store.close();
        store = await open();
      }
      const reopened = await store.openStudy(spec);
      expect(reopened).toMatchObject({ id, created: false });
      expect(await store.trials(id)).toEqual([{ number: 0, state: 'complete', params: claim.params, value: 0.5, intermediates: [[1, 0.5]] }]);
    });

    it.for<{ what: string; change: Partial<StudySpec>; message: RegExp }>([
      { what: 'model', change: { model: 'resnet' }, message: /^study '.*' was made for --model optimized; this run asks for resnet$/ },
      { what: 'a range', change: { space: studySpec().space.map((p) => (p.name === 'lr' ? { ...p, high: 0.5 } : p)) }, message: /another search space: lr is log-float 0.0001..0.1 there, log-float 0.0001..0.5 here$/ },
      { what: 'a parameter more', change: { space: [...studySpec().space, { name: 'weight-decay', kind: 'log-float', low: 1e-6, high: 1e-2 }] }, message: /it does not search weight-decay; this run does$/ },
      { what: 'a parameter less', change: { space: studySpec().space.slice(0, 2) }, message: /it searches dropout; this run does not$/ },
      { what: 'the order', change: { space: [...studySpec().space].reverse() }, message: /its parameters come in another order \(lr, batch-size, dropout; this run: dropout, batch-size, lr\)$/ },
      { what: 'a fixed flag', change: { fixed: { epochs: 5, limit: 2000, augment: true } }, message: /was made with --epochs 3; this run asks for --epochs 5$/ },
      { what: 'a fixed flag more', change: { fixed: { epochs: 3, limit: 2000, augment: true, 'label-smoothing': 0.1 } }, message: /was made without --label-smoothing; this run asks for --label-smoothing 0.1$/ },
      { what: 'a fixed flag less', change: { fixed: { epochs: 3, augment: true } }, message: /was made with --limit 2000; this run leaves it out$/ },
    ])('refuses to open it with another $what, naming the difference (BAD_FLAG), and changes nothing', async ({ change, message }, ctx) => {
      skipped(ctx);
      const spec = studySpec();
      const { id } = await store.openStudy(spec);
      const e = await peer.openStudy({ ...spec, ...change }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(SvhnError);
      expect((e as SvhnError).code).toBe('BAD_FLAG');
      expect((e as SvhnError).message).toMatch(message);
      expect((e as SvhnError).message).not.toContain('\n');
      expect(await store.openStudy(spec)).toEqual({ id, created: false, spec });
    });

    it('claims trials 0..n-1 with propose\'s params, exactly `target` of them, then none', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const { propose, calls } = recordingPropose();
      const claims: ClaimedTrial[] = [];
      for (let i = 0; i < 4; i++) claims.push((await store.claimTrial(id, `w${i}`, 4, propose, LONG))!);
      expect(claims.map((c) => c.number)).toEqual([0, 1, 2, 3]);
      expect(claims.every((c) => !c.reclaimed)).toBe(true);
      expect(new Set(claims.map((c) => c.id)).size).toBe(4);
      expect(claims[2]!.params).toEqual({ lr: 0.003, 'batch-size': 64, dropout: 0.1 });
      // propose sees every trial so far, running ones included (grid must not repeat a point)
      expect(calls).toEqual([
        { seen: [], number: 0 },
        { seen: [0], number: 1 },
        { seen: [0, 1], number: 2 },
        { seen: [0, 1, 2], number: 3 },
      ]);
      expect(await store.claimTrial(id, 'w9', 4, propose, LONG)).toBeUndefined(); // 4 running count toward 4
      expect(calls).toHaveLength(4); // not asked when nothing is to be made
      await store.finish(claims[0]!.id, 'w0', 'complete', 0.9);
      await store.finish(claims[1]!.id, 'w1', 'pruned', 0.4);
      expect(await store.claimTrial(id, 'w9', 4, propose, LONG)).toBeUndefined();
      // A failed trial is not counted: one more is made in its place, numbered on.
      await store.finish(claims[2]!.id, 'w2', 'failed', null);
      const replacement = (await store.claimTrial(id, 'w9', 4, propose, LONG))!;
      expect(replacement).toMatchObject({ number: 4, reclaimed: false });
      expect(await store.claimTrial(id, 'w9', 4, propose, LONG)).toBeUndefined();
      // A larger target on a later run goes on from there.
      expect(await store.claimTrial(id, 'w9', 5, propose, LONG)).toMatchObject({ number: 5 });
      const trials = await store.trials(id);
      expect(trials.map((t) => [t.number, t.state, t.value])).toEqual([
        [0, 'complete', 0.9],
        [1, 'pruned', 0.4],
        [2, 'failed', null],
        [3, 'running', null],
        [4, 'running', null],
        [5, 'running', null],
      ]);
    });

    it('studies are separate: each numbers its trials from 0 and counts only its own', async (ctx) => {
      skipped(ctx);
      const a = (await store.openStudy(studySpec())).id;
      const b = (await store.openStudy(studySpec())).id;
      const { propose } = recordingPropose();
      expect(await store.claimTrial(a, 'w', 1, propose, LONG)).toMatchObject({ number: 0 });
      expect(await store.claimTrial(a, 'w', 1, propose, LONG)).toBeUndefined();
      expect(await store.claimTrial(b, 'w', 1, propose, LONG)).toMatchObject({ number: 0 });
      expect((await store.trials(a)).length).toBe(1);
      expect((await store.trials(b)).length).toBe(1);
    });

    it('report is idempotent per step (the latest value stands), kept in step order, and only the holder\'s', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const claim = (await store.claimTrial(id, 'w1', 4, recordingPropose().propose, LONG))!;
      expect(await store.report(claim.id, 'w1', 2, 0.6)).toBe(true);
      expect(await store.report(claim.id, 'w1', 1, 0.5)).toBe(true);
      expect(await store.report(claim.id, 'w1', 1, 0.5)).toBe(true);
      expect(await store.report(claim.id, 'w1', 2, 0.65)).toBe(true);
      expect(await peer.report(claim.id, 'w2', 3, 0.99)).toBe(false);
      expect((await store.trials(id))[0]!.intermediates).toEqual([
        [1, 0.5],
        [2, 0.65],
      ]);
      await store.finish(claim.id, 'w1', 'pruned', 0.65);
      expect(await store.report(claim.id, 'w1', 3, 0.7)).toBe(false); // finished: no more steps
      expect((await store.trials(id))[0]).toMatchObject({ state: 'pruned', value: 0.65, intermediates: [[1, 0.5], [2, 0.65]] });
    });

    it('finish, heartbeat and release by another worker are refused and change nothing; finish is applied once', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const claim = (await store.claimTrial(id, 'w1', 4, recordingPropose().propose, LONG))!;
      expect(await peer.finish(claim.id, 'w2', 'complete', 0.99)).toBe(false);
      expect(await peer.heartbeat(claim.id, 'w2')).toBe(false);
      await peer.release(claim.id, 'w2');
      expect((await store.trials(id))[0]).toMatchObject({ state: 'running', value: null });
      expect(await store.claimTrial(id, 'w3', 4, recordingPropose().propose, LONG)).toMatchObject({ number: 1, reclaimed: false }); // still w1's
      expect(await store.heartbeat(claim.id, 'w1')).toBe(true);
      expect(await store.finish(claim.id, 'w1', 'complete', 0.8)).toBe(true);
      expect(await store.finish(claim.id, 'w1', 'complete', 0.7)).toBe(false);
      expect(await store.finish(claim.id, 'w1', 'failed', null)).toBe(false);
      expect(await store.heartbeat(claim.id, 'w1')).toBe(false);
      expect((await store.trials(id))[0]).toMatchObject({ state: 'complete', value: 0.8 });
    });

    it('a stale trial is taken over with its number and params (reclaimed); its old holder is then refused', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const { propose, calls } = recordingPropose();
      const first = (await store.claimTrial(id, 'w1', 4, propose, LONG))!;
      await store.report(first.id, 'w1', 1, 0.3);
      await sleep(300);
      // Under a long staleMs it is not stale: w2 gets a new trial.
      const second = (await peer.claimTrial(id, 'w2', 4, propose, LONG))!;
      expect(second).toMatchObject({ number: 1, reclaimed: false });
      // Under 200 ms, w1's (quiet for 300 ms) is; w2's (just claimed) is not.
      const taken = (await peer.claimTrial(id, 'w3', 4, propose, 200))!;
      expect(taken).toEqual({ id: first.id, number: 0, params: first.params, reclaimed: true });
      expect(calls).toHaveLength(2); // nothing proposed for a takeover
      expect(await store.finish(first.id, 'w1', 'complete', 0.9)).toBe(false);
      expect(await store.heartbeat(first.id, 'w1')).toBe(false);
      expect(await store.report(first.id, 'w1', 2, 0.4)).toBe(false);
      // The new holder reports on (its run may resume from the checkpoint) and finishes it.
      expect(await peer.report(first.id, 'w3', 2, 0.45)).toBe(true);
      expect(await peer.finish(first.id, 'w3', 'complete', 0.5)).toBe(true);
      const trials = await store.trials(id);
      expect(trials.map((t) => [t.number, t.state, t.value])).toEqual([
        [0, 'complete', 0.5],
        [1, 'running', null],
      ]);
      expect(trials[0]!.intermediates).toEqual([
        [1, 0.3],
        [2, 0.45],
      ]);
    });

    it('a heartbeat keeps a trial its holder\'s', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const claim = (await store.claimTrial(id, 'w1', 1, recordingPropose().propose, LONG))!;
      for (let i = 0; i < 4; i++) {
        await sleep(100);
        expect(await store.heartbeat(claim.id, 'w1')).toBe(true);
        expect(await peer.claimTrial(id, 'w2', 1, recordingPropose().propose, 1000)).toBeUndefined();
      }
      await sleep(300);
      expect(await peer.claimTrial(id, 'w2', 1, recordingPropose().propose, 200)).toMatchObject({ id: claim.id, reclaimed: true });
    });

    it('release gives a trial back at once: the next claim takes it over, and the old holder is refused', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const { propose } = recordingPropose();
      const claim = (await store.claimTrial(id, 'w1', 2, propose, LONG))!;
      await store.release(claim.id, 'w1');
      expect((await store.trials(id))[0]).toMatchObject({ state: 'running' });
      const taken = (await peer.claimTrial(id, 'w2', 2, propose, LONG))!;
      expect(taken).toEqual({ id: claim.id, number: 0, params: claim.params, reclaimed: true });
      expect(await store.finish(claim.id, 'w1', 'complete', 0.9)).toBe(false);
      expect(await store.heartbeat(claim.id, 'w1')).toBe(false);
      expect(await peer.finish(claim.id, 'w2', 'complete', 0.7)).toBe(true);
      await peer.release(claim.id, 'w2'); // finished: release changes nothing
      expect((await store.trials(id))[0]).toMatchObject({ state: 'complete', value: 0.7 });
    });

    it('releaseAll gives back every running trial of the study, and no finished one', async (ctx) => {
      skipped(ctx);
      const { id } = await store.openStudy(studySpec());
      const { propose } = recordingPropose();
      const claims = [];
      for (let i = 0; i < 3; i++) claims.push((await store.claimTrial(id, `w${i}`, 3, propose, LONG))!);
      await store.finish(claims[1]!.id, 'w1', 'complete', 0.5);
      expect(await store.releaseAll(id)).toBe(2);
      expect(await store.heartbeat(claims[0]!.id, 'w0')).toBe(false);
      const a = (await store.claimTrial(id, 'x', 3, propose, LONG))!;
      const b = (await store.claimTrial(id, 'y', 3, propose, LONG))!;
      expect([a.number, b.number, a.reclaimed, b.reclaimed]).toEqual([0, 2, true, true]);
      expect(await store.claimTrial(id, 'z', 3, propose, LONG)).toBeUndefined();
      expect((await store.trials(id))[1]).toMatchObject({ state: 'complete', value: 0.5 });
    });

    it('workers claiming at once never share a trial and never exceed the target', async (ctx) => {
      skipped(ctx);
      const target = 24;
      const spec = studySpec({ trials: target });
      const { id } = await store.openStudy(spec);
      await peer.openStudy(spec);
      const { propose } = recordingPropose();
      const finishedBy = new Map<number, string>();
      const claimedBy: Array<[number, string]> = [];
      // 8 workers, half on each store (two machines), each looping claim -> report -> finish.
      // Some give their trial back halfway (a Ctrl-C) or fail it: a released trial is run to
      // the end by someone, a failed one is replaced by a new number.
      const loop = async (w: number) => {
        const s = w % 2 === 0 ? store : peer;
        const worker = `worker-${w}`;
        for (let round = 0; ; round++) {
          const claim = await s.claimTrial(id, worker, target, propose, LONG);
          if (!claim) return;
          claimedBy.push([claim.number, worker]);
          expect(await s.report(claim.id, worker, 1, 0.5)).toBe(true);
          if (round === 1 && w < 2) {
            await s.release(claim.id, worker);
            continue;
          }
          const state = round === 0 && w === 3 ? 'failed' : 'complete';
          expect(await s.finish(claim.id, worker, state, state === 'failed' ? null : claim.number / 100)).toBe(true);
          if (state === 'complete') {
            expect(finishedBy.has(claim.number), `trial ${claim.number} finished twice`).toBe(false);
            finishedBy.set(claim.number, worker);
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => loop(w)));
      const trials = await store.trials(id);
      const complete = trials.filter((t) => t.state === 'complete');
      expect(complete).toHaveLength(target);
      expect(finishedBy.size).toBe(target);
      expect(trials.filter((t) => t.state === 'failed')).toHaveLength(1);
      expect(trials.map((t) => t.number)).toEqual(trials.map((_, i) => i)); // no gap, no repeat
      for (const t of complete) expect(t.value).toBe(t.number / 100);
      // A trial was held by two workers only after a release (round 1 of workers 0 and 1).
      const holders = new Map<number, string[]>();
      for (const [n, w] of claimedBy) holders.set(n, [...(holders.get(n) ?? []), w]);
      const shared = [...holders.values()].filter((ws) => ws.length > 1);
      expect(shared.length).toBeLessThanOrEqual(2);
    });
  });
}
