/**
 * Learning-rate schedules (train/schedule.ts): their shape, and against PyTorch's own
 * OneCycleLR where /usr/bin/python3 has torch (the independent reference; skipped elsewhere).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { learningRateAt, type ScheduleSpec } from '../../src/train/schedule.js';

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const rates = (spec: ScheduleSpec, total: number, perEpoch: number) =>
  Array.from({ length: total }, (_, step) => learningRateAt(spec, step, total, perEpoch));

describe('learning-rate schedules', () => {
  it('constant: the peak every step', () => {
    expect(new Set(rates({ schedule: 'constant', lr: 1e-3, warmupEpochs: 0 }, 50, 10))).toEqual(new Set([1e-3]));
  });

  it('cosine: a linear warm-up to the peak, then down to 0 at the last step, never rising again', () => {
    const r = rates({ schedule: 'cosine', lr: 2e-3, warmupEpochs: 1 }, 101, 20);
    expect(r[0]).toBeCloseTo(2e-3 / 20, 12);
    expect(r[19]).toBeCloseTo(2e-3, 12); // the warm-up's last step reaches the peak
    expect(r[20]).toBeCloseTo(2e-3, 12); // the cosine starts at it
    expect(r[60]).toBeCloseTo(1e-3, 12); // half-way down the cosine (steps 20..100): half the peak
    expect(r[100]).toBe(0);
    for (let i = 21; i < 101; i++) expect(r[i]!).toBeLessThanOrEqual(r[i - 1]!);
    // Without warm-up: the peak at step 0.
    expect(learningRateAt({ schedule: 'cosine', lr: 2e-3, warmupEpochs: 0 }, 0, 100, 20)).toBe(2e-3);
  });

  it('onecycle: from peak/25 up to the peak at 30%, down to peak/25/1e4', () => {
    const r = rates({ schedule: 'onecycle', lr: 1e-2, warmupEpochs: 0 }, 100, 10);
    expect(r[0]).toBeCloseTo(1e-2 / 25, 12);
    expect(Math.max(...r)).toBeCloseTo(1e-2, 6);
    expect(r.indexOf(Math.max(...r))).toBe(29);
    expect(r[99]).toBeCloseTo(1e-2 / 25 / 1e4, 12);
  });

  it.skipIf(!hasTorch)('cosine and onecycle match PyTorch step for step (LambdaLR / OneCycleLR)', () => {
    const total = 137;
    const perEpoch = 23;
    const py = `
import json, math, torch
p = torch.nn.Parameter(torch.zeros(1))
opt = torch.optim.SGD([p], lr=0.01)
s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=${total}, cycle_momentum=False)
one = []
for _ in range(${total}):
    one.append(opt.param_groups[0]['lr']); opt.step(); s.step()
opt2 = torch.optim.SGD([p], lr=0.002)
warm, last = ${perEpoch}, ${total} - 1
f = lambda t: (t + 1) / warm if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / (last - warm)))
s2 = torch.optim.lr_scheduler.LambdaLR(opt2, f)
cos = []
for _ in range(${total}):
    cos.append(opt2.param_groups[0]['lr']); opt2.step(); s2.step()
print(json.dumps({'one': one, 'cos': cos}))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const torch = JSON.parse(r.stdout) as { one: number[]; cos: number[] };
    const one = rates({ schedule: 'onecycle', lr: 0.01, warmupEpochs: 0 }, total, perEpoch);
    const cos = rates({ schedule: 'cosine', lr: 0.002, warmupEpochs: 1 }, total, perEpoch);
    one.forEach((v, i) => expect(Math.abs(v - torch.one[i]!)).toBeLessThan(1e-12));
    cos.forEach((v, i) => expect(Math.abs(v - torch.cos[i]!)).toBeLessThan(1e-12));
  });
});
