/**
 * predict's row sink (src/predict/output.ts) on a stream: backpressure without listeners left
 * on the stream, a stream that fails or closes ends the writes instead of hanging them, and
 * rows shown on a terminal have their names escaped while rows to a pipe keep them exact.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openRowSink } from '../../src/predict/output.js';
import type { PredictionRow } from '../../src/predict/predict.js';

const row = (i: number): PredictionRow => ({ input: `img-${i}.png`, predicted: i % 10, confidence: 0.5, top: [{ digit: i % 10, prob: 0.5 }], label: null, error: null, best: i % 10, abstained: false });

/** A slow reader: each chunk is taken a tick later, so the 64-byte buffer fills and writes wait. */
function slowStream(chunks: string[], fail?: (n: number) => Error | undefined): Writable {
  return new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _enc, done) {
      setImmediate(() => {
        const err = fail?.(chunks.length);
        if (!err) chunks.push(chunk.toString());
        done(err);
      });
    },
  });
}

describe('openRowSink on a stream', () => {
  it('waits for a slow reader without adding listeners to the stream', async () => {
    const chunks: string[] = [];
    const stream = slowStream(chunks);
    for (let i = 0; i < 10; i++) stream.on('error', () => undefined); // as stdout carries one per worker thread
    const added: string[] = [];
    stream.on('newListener', (event: string) => added.push(event));
    const sink = await openRowSink({ format: 'csv', topK: 1, stream });
    for (let i = 0; i < 200; i++) {
      await sink.write(row(i));
      expect(stream.writableLength).toBeLessThanOrEqual(64 + 40); // never more than one row past the buffer
    }
    expect(added).toEqual([]);
    await sink.close();
    await new Promise<void>((done) => stream.end(done));
    const lines = chunks.join('').trim().split('\n');
    expect(lines).toHaveLength(201);
    expect(lines[200]).toBe('img-199.png,9,0.500000,9,0.500000,,,9,false');
  });

  it('rejects, rather than hangs, once the reader is gone (EPIPE) or the stream is closed', async () => {
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    const stream = slowStream([], (n) => (n >= 3 ? epipe : undefined));
    stream.on('error', () => undefined);
    const sink = await openRowSink({ format: 'csv', topK: 1, stream });
    const written = (async () => {
      for (let i = 0; i < 100; i++) await sink.write(row(i));
    })();
    await expect(written).rejects.toThrow(/cannot write stdout: write EPIPE/);

    const closed = slowStream([]);
    closed.destroy();
    const sink2 = await openRowSink({ format: 'jsonl', topK: 1, stream: closed });
    await expect(sink2.write(row(0))).rejects.toThrow(/cannot write stdout/);
  }, 10_000);
});

describe('openRowSink on a terminal', () => {
  const named = (input: string, error: string | null = null): PredictionRow => ({ ...row(3), input, ...(error ? { predicted: null, confidence: null, top: [], error, best: null } : {}) });
  const rowsOf = async (format: 'csv' | 'jsonl', terminal: boolean, rows: PredictionRow[]) => {
    const chunks: string[] = [];
    const stream = slowStream(chunks);
    const sink = await openRowSink({ format, topK: 1, stream, terminal });
    for (const r of rows) await sink.write(r);
    await sink.close();
    await new Promise<void>((done) => stream.end(done));
    return chunks.join('').trim().split('\n');
  };
  const RED = '3/\x1b[31mRED\x07.png';
  const LONG = `4/${'x'.repeat(100_000)}.png`;

  it('CSV: escapes control characters and cuts long names in the cells of user text', async () => {
    const [, red, long, failed] = await rowsOf('csv', true, [named(RED), named(LONG), named('a\x9b.png', 'cannot read a\x9b.png')]);
    expect(red).toBe('3/\\x1b[31mRED\\x07.png,3,0.500000,3,0.500000,,,3,false');
    expect(long).toMatch(/^"4\/x+…\[99,\d{3} characters elided\]…x+\.png",3,/); // quoted: the count has a comma
    expect(failed).toBe('a\\x9b.png,,,,,,cannot read a\\x9b.png,,false');
  });

  it('JSONL: JSON escapes every control character (DEL and C1 too) and long names are cut', async () => {
    const [red, long] = await rowsOf('jsonl', true, [named('a\x1b\x9b\x7f.png'), named(LONG)]);
    expect(red).toContain('"input":"a\\u001b\\u009b\\u007f.png"');
    expect(JSON.parse(red!).input).toBe('a\x1b\x9b\x7f.png'); // the same value
    expect(JSON.parse(long!).input).toMatch(/^4\/x+…\[99,\d{3} characters elided\]…x+\.png$/);
  });

  it('to a pipe or file the rows keep the exact names', async () => {
    expect((await rowsOf('csv', false, [named(RED)]))[1]).toBe(`${RED},3,0.500000,3,0.500000,,,3,false`);
    expect(JSON.parse((await rowsOf('jsonl', false, [named(LONG)]))[0]!).input).toBe(LONG);
  });
});
