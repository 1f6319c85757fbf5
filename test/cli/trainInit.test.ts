/**
 * `svhn train --init MODEL_DIR` through the real CLI: fine-tuning defaults, the architecture
 * taken from (and checked against) the parent, the parent recorded, a seed repeated bit for bit.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import { writeTinyCache } from '../train/helpers.js';
import { svhnSync } from '../helpers.js';

let tmp: string;
const svhn = (args: string[]) => svhnSync(args, { cwd: tmp });
const TINY = ['--data-dir', 'data', '--limit', '20', '--val-limit', '10', '--batch-size', '10', '--backend', 'wasm', '--log-format', 'json'];
const sha = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('svhn: error'));

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-init-'));
  await writeTinyCache(join(tmp, 'data'), { train: 40, val: 20 });
  await writeTinyCache(join(tmp, 'data2'), { train: 40, val: 20 }, { seed: 70 });
  const parent = svhn(['train', '--model', 'baseline', ...TINY, '--epochs', '1', '--seed', '1', '--out', 'models/parent']);
  expect(parent.code, parent.stderr).toBe(0);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn train --init', () => {
  it("fine-tunes with the fine-tuning defaults, the parent's architecture, the parent recorded, and repeats bit for bit", async () => {
    const args = ['train', '--init', 'models/parent', ...TINY.map((a) => (a === 'data' ? 'data2' : a)), '--seed', '4', '--json'];
    const a = svhn([...args, '--out', 'models/ft-a']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/fine-tuning from \S*models\/parent \(baseline, trained on the SYNTHETIC sample\)/);
    const s = JSON.parse(a.stdout);
    const f = DEFAULTS.finetune;
    expect(s.model).toBe('baseline');
    expect(s.hyperparameters).toMatchObject({ lr: f.lr, epochs: f.epochs, patience: f.patience, recalibrateBn: f.recalibrateBn });
    expect(s.epochsRun).toBeLessThanOrEqual(f.epochs);
    const parentMeta = JSON.parse(await readFile(join(tmp, 'models/parent/metadata.json'), 'utf8'));
    const meta = JSON.parse(await readFile(join(tmp, 'models/ft-a/metadata.json'), 'utf8'));
    expect(meta.parent).toMatchObject({
      dir: join(tmp, 'models/parent'),
      architecture: 'baseline',
      weightsSha256: await sha(join(tmp, 'models/parent/weights.bin')),
      metadataSha256: await sha(join(tmp, 'models/parent/metadata.json')),
      dataManifestSha256: parentMeta.dataManifestSha256,
    });
    // Its own data is the fine-tuning cache, not the parent's.
    expect(meta.dataManifestSha256).not.toBe(parentMeta.dataManifestSha256);

    const b = svhn([...args, '--out', 'models/ft-b']);
    expect(b.code, b.stderr).toBe(0);
    expect((await readFile(join(tmp, 'models/ft-a/weights.bin'))).equals(await readFile(join(tmp, 'models/ft-b/weights.bin')))).toBe(true);
    expect((await readFile(join(tmp, 'models/ft-a/weights.bin'))).equals(await readFile(join(tmp, 'models/parent/weights.bin')))).toBe(false);

    // A flag given wins over the fine-tuning default.
    const c = svhn(['train', '--init', 'models/parent', ...TINY, '--epochs', '1', '--lr', '0.002', '--no-recalibrate-bn', '--json', '--out', 'models/ft-c']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).hyperparameters).toMatchObject({ lr: 0.002, epochs: 1, patience: f.patience, recalibrateBn: false });
  });

  it('refuses another architecture (exit 2), a missing parent (exit 1) and the parent as --out, writing nothing', async () => {
    const cases: Array<[string[], string, number]> = [
      [['train', '--model', 'optimized'], "svhn: error: --model optimized: --init models/parent is a baseline model, and a fine-tune keeps the architecture; drop --model (it defaults to the parent's) or pass --model baseline", 2],
      [['train-optimized'], 'svhn: error: --model optimized: --init models/parent is a baseline model', 2],
    ];
    for (const [cmd, message, code] of cases) {
      const r = svhn([...cmd, '--init', 'models/parent', ...TINY, '--out', 'models/x']);
      expect(errorLines(r.stderr), cmd.join(' ')).toHaveLength(1);
      expect(errorLines(r.stderr)[0]).toContain(message);
      expect(r.code).toBe(code);
    }
    const missing = svhn(['train', '--init', 'models/nope', ...TINY, '--out', 'models/x']);
    expect(missing.code).toBe(1);
    expect(errorLines(missing.stderr)).toEqual(['svhn: error: --init models/nope: no such model directory; pass a directory written by `svhn train`, e.g. models/optimized']);
    // A folder that is not a whole model names --init too, with or without --model.
    await mkdir(join(tmp, 'models/empty'), { recursive: true });
    for (const model of [[], ['--model', 'baseline']]) {
      const empty = svhn(['train', '--init', 'models/empty', ...model, ...TINY, '--out', 'models/x']);
      expect(empty.code).toBe(1);
      expect(errorLines(empty.stderr)).toEqual([
        `svhn: error: --init models/empty: model directory is incomplete: cannot read metadata models/empty/metadata.json (ENOENT); pass a directory written by \`svhn train\`, e.g. models/optimized`,
      ]);
    }
    await cp(join(tmp, 'models/parent'), join(tmp, 'models/no-json'), { recursive: true });
    await rm(join(tmp, 'models/no-json/model.json'));
    const noJson = svhn(['train', '--init', 'models/no-json', ...TINY, '--out', 'models/x']);
    expect(noJson.code).toBe(1);
    expect(errorLines(noJson.stderr)).toEqual([
      `svhn: error: --init ${join(tmp, 'models/no-json')}: model directory is incomplete: cannot read model ${join(tmp, 'models/no-json/model.json')} (ENOENT); pass a directory written by \`svhn train\`, e.g. models/optimized`,
    ]);
    expect(existsSync(join(tmp, 'models/x'))).toBe(false);
    expect(existsSync(join(tmp, 'models/x.checkpoint'))).toBe(false);

    // The parent is never replaced by its own fine-tune; by default the fine-tune goes beside it.
    const before = await sha(join(tmp, 'models/parent/weights.bin'));
    const self = svhn(['train', '--init', 'models/parent', ...TINY, '--epochs', '1', '--out', 'models/parent/']);
    expect(self.code).toBe(2);
    expect(errorLines(self.stderr)).toEqual(['svhn: error: --out models/parent/: is the --init model models/parent itself or inside it; a fine-tune goes to a directory of its own; pass another --out']);
    const byDefault = svhn(['train', '--init', 'models/parent', ...TINY, '--epochs', '1']);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(existsSync(join(tmp, 'models/baseline-finetuned/weights.bin'))).toBe(true);
    expect(await sha(join(tmp, 'models/parent/weights.bin'))).toBe(before);
  });

  it('says the fine-tuning defaults in --help', () => {
    const r = svhn(['train', '--help']);
    expect(r.code).toBe(0);
    const f = DEFAULTS.finetune;
    expect(r.stdout).toContain('--init <model_dir>');
    const offline = DEFAULTS.train.syntheticRecipes.optimized;
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(
      `(default: ${DEFAULTS.train.recipes.optimized.lr} for baseline and optimized, ${DEFAULTS.train.recipes.resnet.lr} for resnet and reader; ${offline.lr} for optimized on the synthetic sample; ${f.lr} with --init)`,
    );
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(`cosine for resnet and reader; ${offline.schedule} for optimized on the synthetic sample)`);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(`; ${f.epochs} with --init)`);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain("BatchNorm's statistics measured on your training images at the start");
  });
});
