/**
 * The end-to-end smoke run: the whole pipeline through the real CLI, the way a user runs it,
 * on the offline sample in a temporary folder:
 *   download --synthetic -> preprocess -> train (both aliases' model) -> evaluate (two models)
 *   -> predict (a .mat file and a cache split) -> report -> export (ONNX, proven against predict).
 * Small sizes keep it to well under a minute on two cores; each stage's own tests cover depth.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { svhnSync } from '../helpers.js';
import { DEFAULTS } from '../../src/config.js';

let tmp: string;

const svhn = (args: string[]) => svhnSync(args, { cwd: tmp, timeoutMs: 300_000 });

function ok(args: string[]): { stdout: string; stderr: string } {
  const r = svhn(args);
  if (r.code !== 0) throw new Error(`svhn ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-e2e-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('the whole pipeline on the offline sample', () => {
  it('runs download -> preprocess -> train -> evaluate -> predict -> report -> export', async () => {
    // 1. The offline sample: real SVHN file names, marked synthetic.
    ok(['download', '--synthetic', '--size', 'small', '--split', 'train,test', '--data-dir', 'data']);
    expect(existsSync(join(tmp, 'data/train_32x32.mat'))).toBe(true);
    expect(existsSync(join(tmp, 'data/test_32x32.mat'))).toBe(true);
    expect(JSON.parse(await readFile(join(tmp, 'data/SYNTHETIC.json'), 'utf8')).synthetic).toBe(true);

    // 2. The cache: counts add up, and the test split is the test file's, not train's.
    const pre = JSON.parse(ok(['preprocess', '--data-dir', 'data', '--json']).stdout);
    const manifest = JSON.parse(await readFile(join(tmp, 'data/cache/manifest.json'), 'utf8'));
    expect(manifest.synthetic).toBe(true);
    expect(manifest.splits.train.count + manifest.splits.val.count).toBe(DEFAULTS.synthetic.sizes.small.train);
    expect(manifest.splits.test.count).toBe(DEFAULTS.synthetic.sizes.small.test);
    expect(pre).toBeTruthy();

    // 3. Both models, short, on the backend auto picks here.
    const small = ['--data-dir', 'data', '--limit', '640', '--val-limit', '256', '--epochs', '1', '--json'];
    const base = JSON.parse(ok(['train-baseline', ...small, '--out', 'models/baseline']).stdout);
    const opt = JSON.parse(ok(['train', '--model', 'optimized', ...small, '--out', 'models/optimized']).stdout);
    expect(base.params.total).toBe(315_722);
    expect(opt.params.total).toBe(161_098);
    expect(opt.synthetic).toBe(true);
    const meta = JSON.parse(await readFile(join(tmp, 'models/optimized/metadata.json'), 'utf8'));
    expect(meta.dataManifestSha256).toMatch(/^[0-9a-f]{64}$/);

    // 4. Evaluate both on the test split: a comparison table, with everything written.
    const ev = ok(['evaluate', '--model', 'models/baseline', '--model', 'models/optimized', '--data-dir', 'data']);
    expect(ev.stdout).toContain('SYNTHETIC');
    expect(ev.stdout).toMatch(/weighted avg/);
    expect(ev.stdout).toMatch(/comparison/i);
    for (const m of ['baseline', 'optimized']) {
      for (const f of ['report.json', 'confusion.csv', 'confusion.png', 'f1.png']) {
        expect(existsSync(join(tmp, 'models', m, 'evaluation', f))).toBe(true);
      }
    }
    const report = JSON.parse(await readFile(join(tmp, 'models/optimized/evaluation/report.json'), 'utf8'));
    expect(report.accuracy ?? report.metrics?.accuracy).toBeGreaterThanOrEqual(0);

    // 5. Predict over the test .mat and a cache split: one CSV row per image, stdout clean.
    const pm = ok(['predict', 'data/test_32x32.mat', '--model', 'models/optimized', '--grid', 'grid.png']);
    const rows = pm.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^input,predicted,confidence/);
    expect(rows).toHaveLength(1 + 2000);
    expect(existsSync(join(tmp, 'grid.png'))).toBe(true);
    const pc = ok(['predict', 'cache:val', '--model', 'models/baseline', '--data-dir', 'data', '--format', 'jsonl', '--out', 'val.jsonl']);
    expect(pc.stdout).toBe('');
    const lines = (await readFile(join(tmp, 'val.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(manifest.splits.val.count);

    // 6. The self-contained HTML report of both models.
    ok(['report', '--model', 'models/baseline', '--model', 'models/optimized', '--data-dir', 'data', '--out', 'report.html']);
    const html = await readFile(join(tmp, 'report.html'), 'utf8');
    expect(html).toContain('data:image/png;base64,');
    expect(html).not.toMatch(/<script[^>]+src=|https?:\/\//);

    // 7. The trained model as ONNX beside its directory, its probabilities predict's within 1e-5.
    const ex = JSON.parse(ok(['export', '--model', 'models/optimized', '--format', 'onnx', '--json']).stdout);
    expect(ex.out).toBe(join(tmp, 'models/optimized.onnx'));
    expect(ex.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(existsSync(join(tmp, 'models/optimized.onnx'))).toBe(true);
    console.log(`export of the trained optimized model: max |diff| ${ex.maxAbsDiff.toExponential(2)}, same digit on ${ex.agree} of ${ex.images}`);
  });
});
