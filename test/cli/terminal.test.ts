/**
 * What reaches a terminal: a path or name a user supplied (a CSV row, a file name, a flag's
 * value) is printed with its control characters escaped (`\x1b`, not ESC) and, when very
 * long, cut in the middle with the count of what was left out (util/text.ts printable), in
 * errors, logs, progress and summaries. Machine outputs (CSV/JSONL rows to a pipe or file,
 * --json) keep the exact bytes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SVHN_BIN, svhnAsync } from '../helpers.js';
import { digitImage, writeDigitFolder, writeLabelsCsv } from '../data/images/labelledHelpers.js';
import { saveColourModel } from '../predict/helpers.js';
import { writeTinyCache } from '../train/helpers.js';

let tmp: string;
const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp, timeoutMs: 90_000 });

/** Control characters a terminal acts on (C0 but newline, DEL, C1): none may be printed raw. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

const RED = '3/\x1b[31mRED\x07.png'; // colours the terminal red and rings its bell
const C1 = '5/a\x9b2Jb\x7f.png'; // CSI (clear screen) as a C1 control, and DEL
const LONG = `4/${'x'.repeat(200_000)}.png`; // printed whole, 200 kB on one line

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-term-'));
  const files = await writeDigitFolder(join(tmp, 'digits'), 3, 5);
  await writeLabelsCsv(join(tmp, 'digits', 'labels.csv'), [...files.map((f) => [f.name, f.label] as [string, number]), [RED, 3], [C1, 5], [LONG, 4]]);
  await saveColourModel(join(tmp, 'model'));
  await mkdir(join(tmp, 'imgs'));
  await writeFile(join(tmp, 'imgs', '\x1b[31mRED\x07.png'), await digitImage(2, { width: 20, height: 20, seed: 1 }));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('user-supplied paths on the terminal', () => {
  it('preprocess --labels: the skipped-files summary and the log show control bytes escaped and a long path cut', async () => {
    const r = await svhn(['preprocess', '--labels', 'digits/labels.csv', '--data-dir', 'pre', '--log-format', 'pretty']);
    expect(r.code, r.stderr).toBe(0);
    for (const [name, text] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
      expect(text, name).not.toMatch(RAW_CONTROL);
      expect(text, name).toContain('skipped digits/3/\\x1b[31mRED\\x07.png: ');
      expect(text, name).toContain('skipped digits/5/a\\x9b2Jb\\x7f.png: ');
      expect(text, name).toMatch(/skipped digits\/4\/x{100,}…\[\d{3},\d{3} characters elided\]…x{50,}\.png: /);
      expect(Math.max(...text.split('\n').map((l) => l.length)), name).toBeLessThan(1200);
    }
  });

  it('evaluate --labels: the log lines of skipped files the same way, and their fields (--verbose, JSON) escaped too', async () => {
    const r = await svhn(['evaluate', '--model', 'model', '--labels', 'digits/labels.csv', '--backend', 'cpu', '--log-format', 'pretty', '--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(RAW_CONTROL);
    expect(r.stderr).toContain('skipped digits/3/\\x1b[31mRED\\x07.png: ');
    expect(r.stderr).toMatch(/skipped digits\/4\/x+…\[\d{3},\d{3} characters elided\]…x+\.png/);
    expect(r.stderr).toContain('file: "digits/5/a\\u009b2Jb\\u007f.png"'); // the field, JSON-quoted as pino-pretty shows fields
    const json = await svhn(['evaluate', '--model', 'model', '--labels', 'digits/labels.csv', '--backend', 'cpu', '--log-format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).not.toMatch(RAW_CONTROL);
    const logged = json.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { file?: string; msg: string });
    expect(logged.map((l) => l.file)).toContain(C1.replace('5/', 'digits/5/')); // fields keep the exact name
    expect(logged.map((l) => l.msg)).toContain('skipped digits/5/a\\x9b2Jb\\x7f.png: cannot read: no such file'); // messages are printable
  });

  it('errors: a file name in an error, and a flag value in commander\'s, are escaped', async () => {
    const missing = await svhn(['predict', 'no\x1b[2Jpe.png', '--model', 'model']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).not.toMatch(RAW_CONTROL);
    expect(missing.stderr).toContain('svhn: error: INPUT no\\x1b[2Jpe.png: no such file or directory');
    const flag = await svhn(['predict', 'x.png', '--model', 'model', '--top-k', '\x1b[2J']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).not.toMatch(RAW_CONTROL);
    expect(flag.stderr).toContain("'\\x1b[2J'");
  });

  it('predict: rows to a pipe keep the exact name; rows shown on a terminal have it escaped', async () => {
    const piped = await svhn(['predict', 'imgs', '--model', 'model', '--backend', 'cpu']);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout.split('\n')[1]).toBe('imgs/\x1b[31mRED\x07.png,2,' + piped.stdout.split('\n')[1]!.split(',').slice(2).join(','));
    const jsonl = await svhn(['predict', 'imgs', '--model', 'model', '--backend', 'cpu', '--format', 'jsonl']);
    expect(JSON.parse(jsonl.stdout.split('\n')[0]!).input).toBe('imgs/\x1b[31mRED\x07.png');
    expect(jsonl.stdout).not.toMatch(RAW_CONTROL); // JSON escapes it (\u001b)

    // A terminal for stdout: util-linux `script` runs the command on a pseudo-terminal.
    const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
    if (!script) return;
    const command = `'${process.execPath}' '${SVHN_BIN}' predict imgs --model model --backend cpu 2>/dev/null`;
    const tty = spawnSync(script, ['-qec', command, '/dev/null'], { cwd: tmp, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
    expect(tty.status, tty.stderr).toBe(0);
    expect(tty.stdout).toContain('imgs/\\x1b[31mRED\\x07.png,2,');
    expect(tty.stdout).not.toMatch(/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]/); // (the terminal turns \n into \r\n)
  });

  it("train: the summary names --out escaped (the model is saved under the exact name)", async () => {
    await writeTinyCache(join(tmp, 'data'), { train: 20, val: 10 });
    const out = 'models/\x1b[31mred\x07';
    const r = await svhn(['train', '--model', 'baseline', '--data-dir', 'data', '--epochs', '1', '--batch-size', '10', '--backend', 'wasm', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('model      models/\\x1b[31mred\\x07 (baseline');
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    expect(existsSync(join(tmp, out, 'weights.bin'))).toBe(true);
  });
});
