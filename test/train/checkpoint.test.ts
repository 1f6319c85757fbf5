/**
 * The checkpoint's tensors file is checked against the sha256 state.json records, so a
 * damaged one (a flipped bit keeps the size) is refused instead of resumed.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../../src/train/checkpoint.js';
import { rejection } from '../helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-ckpt-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function checkpoint(epoch: number): Checkpoint {
  const w = (name: string, n: number) => ({ name, shape: [n], data: Float32Array.from({ length: n }, (_, i) => i / 7 + epoch) });
  return {
    state: {
      format: 'svhn-checkpoint',
      version: 1,
      epoch,
      config: { model: 'baseline', seed: 1, batchSize: 8, lr: 1e-3, limit: null, valLimit: null, extra: false, augment: false, dataManifestSha256: 'x', init: null },
      backend: 'cpu',
      threads: 1,
      rng: { shuffle: 1, augment: 2, dropout: [3] },
      optimizer: { iterations: 4, accBeta1: 0.9, accBeta2: 0.999 },
      history: [],
      earlyStopping: { patience: 3, bestLoss: Infinity, bestEpoch: 0, wait: 0, stoppedEpoch: null },
      bestModel: { bestAcc: -Infinity, bestEpoch: 0 },
      wallTimeSec: 1,
    },
    model: [w('k', 12), w('b', 3)],
    optimizer: [w('m', 12), w('v', 12)],
    earlyStoppingBest: null,
    bestModelBest: [w('k', 12), w('b', 3)],
  };
}

describe('checkpoint', () => {
  it('round-trips, and refuses a tensors file with a flipped bit, naming it', async () => {
    const dir = join(tmp, 'run.checkpoint');
    await saveCheckpoint(dir, checkpoint(2));
    const back = await loadCheckpoint(dir);
    expect(back!.state.epoch).toBe(2);
    expect(Array.from(back!.model[1]!.data)).toEqual(Array.from(checkpoint(2).model[1]!.data));
    expect(await readdir(dir)).toEqual(['state.json', 'tensors-0002.bin']);

    const bin = join(dir, 'tensors-0002.bin');
    const bytes = await readFile(bin);
    bytes[37]! ^= 0x10; // same size: only the hash can tell
    await writeFile(bin, bytes);
    const e = await rejection(loadCheckpoint(dir));
    expect(e.code).toBe('BAD_INPUT');
    expect(e.message).toMatch(/^\S+\/run\.checkpoint\/tensors-0002\.bin: sha256 differs from the one state\.json records \(expected [0-9a-f]{12}\.\.\., got [0-9a-f]{12}\.\.\.\): the checkpoint is damaged$/);
    expect(e.suggestion).toBe(`delete ${dir} and train without --resume`);
  });

  it("removes a killed run's half-written tensors file at the next save, and leaves a live run's", async () => {
    const dir = join(tmp, 'killed.checkpoint');
    await saveCheckpoint(dir, checkpoint(1));
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const deadTemp = `.tmp-tensors-0002.bin-${dead}-abc`;
    const liveTemp = `.tmp-tensors-0002.bin-${process.pid}-abd`; // this process: live
    await writeFile(join(dir, deadTemp), 'half');
    await writeFile(join(dir, liveTemp), 'half');
    await saveCheckpoint(dir, checkpoint(3));
    expect((await readdir(dir)).sort()).toEqual([liveTemp, 'state.json', 'tensors-0003.bin'].sort());
  });
});
