/**
 * AdamW (train/adam.ts setWeightDecay, setLearningRate): decoupled decay on the listed
 * variables only; the fused wasm step and the cpu fallback agree bit for bit; and both match
 * torch.optim.AdamW over steps with a changing rate where /usr/bin/python3 has torch.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FusedAdamOptimizer } from '../../src/train/adam.js';
import { useBackend, type Backend } from '../backend/helpers.js';

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const INIT = { kernel: [0.5, -1.5, 2, 0.25, -0.75, 1], bias: [0.3, -0.2, 0.1] };
const GRADS = [
  { kernel: [0.1, -0.2, 0.3, -0.4, 0.5, -0.6], bias: [0.01, 0.02, -0.03] },
  { kernel: [-0.3, 0.1, 0.2, 0.05, -0.5, 0.4], bias: [-0.02, 0.04, 0.01] },
  { kernel: [0.2, 0.2, -0.1, 0.3, 0.1, -0.2], bias: [0.03, -0.01, 0.02] },
];
const RATES = [0.01, 0.02, 0.005];
const DECAY = 0.1;

async function runAdamW(backend: Backend, decay: number): Promise<{ kernel: number[]; bias: number[]; leaked: number }> {
  await useBackend(backend);
  const before = tf.memory().numTensors;
  const [kernel, bias] = tf.tidy(() => [
    tf.variable(tf.tensor(INIT.kernel, [2, 3]), true, `adamw_${backend}_${decay}_kernel`),
    tf.variable(tf.tensor(INIT.bias), true, `adamw_${backend}_${decay}_bias`),
  ]) as [tf.Variable, tf.Variable];
  const opt = new FusedAdamOptimizer(RATES[0]!);
  opt.setWeightDecay({ rate: decay, variables: new Set([kernel.name]) });
  GRADS.forEach((g, step) => {
    opt.setLearningRate(RATES[step]!);
    const grads = [
      { name: kernel.name, tensor: tf.tensor(g.kernel, [2, 3]) },
      { name: bias.name, tensor: tf.tensor(g.bias) },
    ];
    opt.applyGradients(grads);
    tf.dispose(grads.map((x) => x.tensor));
  });
  const out = { kernel: Array.from(kernel.dataSync()), bias: Array.from(bias.dataSync()) };
  opt.dispose();
  tf.dispose([kernel, bias]);
  return { ...out, leaked: tf.memory().numTensors - before };
}

describe('AdamW', () => {
  it('decays only the listed variables, the same bytes on wasm (fused) and cpu, and leaks nothing', async () => {
    const wasm = await runAdamW('wasm', DECAY);
    const cpu = await runAdamW('cpu', DECAY);
    const plain = await runAdamW('cpu', 0);
    expect(wasm.kernel).toEqual(cpu.kernel);
    expect(wasm.bias).toEqual(cpu.bias);
    expect(cpu.bias).toEqual(plain.bias); // not listed: plain Adam
    // Listed: each step shrinks toward 0 by (1 - lr * decay) beyond Adam's own move.
    cpu.kernel.forEach((v, i) => expect(Math.abs(v)).toBeLessThan(Math.abs(plain.kernel[i]!)));
    expect(wasm.leaked).toBe(0);
    expect(cpu.leaked).toBe(0);
  });

  it.skipIf(!hasTorch)('matches torch.optim.AdamW (eps 1e-7, decay on the kernel only) with a changing rate', async () => {
    const py = `
import json, torch
k = torch.nn.Parameter(torch.tensor(${JSON.stringify(INIT.kernel)}).reshape(2, 3))
b = torch.nn.Parameter(torch.tensor(${JSON.stringify(INIT.bias)}))
opt = torch.optim.AdamW([{'params': [k], 'weight_decay': ${DECAY}}, {'params': [b], 'weight_decay': 0.0}], lr=0.01, eps=1e-7)
grads = ${JSON.stringify(GRADS)}
rates = ${JSON.stringify(RATES)}
for g, lr in zip(grads, rates):
    for group in opt.param_groups: group['lr'] = lr
    k.grad = torch.tensor(g['kernel']).reshape(2, 3); b.grad = torch.tensor(g['bias'])
    opt.step()
print(json.dumps({'kernel': k.detach().flatten().tolist(), 'bias': b.detach().tolist()}))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const torch = JSON.parse(r.stdout) as { kernel: number[]; bias: number[] };
    const ours = await runAdamW('cpu', DECAY);
    ours.kernel.forEach((v, i) => expect(Math.abs(v - torch.kernel[i]!)).toBeLessThan(1e-6));
    ours.bias.forEach((v, i) => expect(Math.abs(v - torch.bias[i]!)).toBeLessThan(1e-6));
  });
});
