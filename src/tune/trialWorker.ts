/**
 * One of `svhn tune`'s trials, in a process of its own (forked by tune/run.ts with an IPC
 * channel): `svhn train`'s own code (train/resolve.ts, train/loop.ts trainModel) on the
 * study's fixed flags and the trial's parameters, into the trial's model directory, with its
 * checkpoint beside it. After each epoch it sends the validation figures and waits for the
 * study's word: go on, or stop here (pruned). A process per trial keeps trials apart (tfjs's
 * engine, its memory, a crash) and lets `--workers N` run N at once.
 *
 * Parent -> child: TrialJob, then one TrialVerdict per epoch.
 * Child -> parent: TrialEpoch per epoch, then one TrialEnd.
 */
import type { Params } from './types.js';

export interface TrialJob {
  type: 'job';
  number: number;
  model: string;
  /** The study's fixed flags and the trial's parameters and seed, under train's flag names. */
  values: Params;
  outDir: string;
  resume: boolean;
  threads: number;
}
export interface TrialVerdict {
  type: 'verdict';
  prune: boolean;
}
export interface TrialEpoch {
  type: 'epoch';
  epoch: number;
  /** The run's epochs (its last one is never pruned). */
  epochs: number;
  valAcc: number;
}
export type TrialEnd =
  | { type: 'done'; value: number }
  | { type: 'pruned' }
  | { type: 'error'; message: string };

class Pruned extends Error {
  constructor(readonly epoch: number) {
    super(`pruned after epoch ${epoch}`);
  }
}

function send(message: TrialEpoch | TrialEnd): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

/** The next message of the given type from the parent. */
function next<T extends { type: string }>(type: T['type']): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      if ((m as { type?: string })?.type !== type) return;
      process.off('message', on);
      resolve(m as T);
    };
    process.on('message', on);
  });
}

async function runJob(job: TrialJob): Promise<TrialEnd> {
  const { trainFlagsOf } = await import('../cli/train.js');
  const { resolveTrainOptions } = await import('../train/resolve.js');
  const { trainModel } = await import('../train/loop.js');
  const flags = await trainFlagsOf({ model: job.model, ...job.values }, `trial ${job.number}`);
  const options = await resolveTrainOptions(job.model, flags, job.outDir);
  try {
    const result = await trainModel({
      ...options,
      force: true, // the trial's own directory: only a model tune made there is replaced (outDir.ts)
      madeBy: 'tune',
      resume: job.resume,
      threads: job.threads,
      progress: 'silent',
      onEpochEnd: async (record) => {
        const verdict = next<TrialVerdict>('verdict');
        await send({ type: 'epoch', epoch: record.epoch, epochs: options.epochs, valAcc: record.val_acc });
        if ((await verdict).prune) throw new Pruned(record.epoch); // after the epoch's checkpoint: nothing half-written
      },
    });
    return { type: 'done', value: result.metadata.validation.acc };
  } catch (e) {
    if (e instanceof Pruned) return { type: 'pruned' };
    throw e;
  }
}

if (process.send) {
  const { installInterruptHandler } = await import('../util/interrupt.js');
  installInterruptHandler(); // Ctrl-C (sent on by tune): temporaries removed, exit 130; the epoch's checkpoint stays whole
  // tune gone (killed): this trial is no one's; stop, as on Ctrl-C, rather than train for nobody
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  const job = await next<TrialJob>('job');
  let end: TrialEnd;
  try {
    end = await runJob(job);
  } catch (e) {
    end = { type: 'error', message: e instanceof Error ? e.message : String(e) };
  }
  process.removeAllListeners('disconnect');
  await send(end);
  process.disconnect();
}
