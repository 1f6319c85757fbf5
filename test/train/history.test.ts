import { describe, expect, it } from 'vitest';
import type { HistoryRecord } from '../../src/models/modelDir.js';
import { historyToCsv } from '../../src/train/history.js';

const rec = (epoch: number): HistoryRecord => ({ epoch, loss: 1, acc: 0.5, val_loss: 1.5, val_acc: 0.25, seconds: 2, imagesPerSec: 50 });

describe('historyToCsv', () => {
  it('writes lr as the trailing column', () => {
    expect(historyToCsv([{ ...rec(1), lr: 0.001 }])).toBe('epoch,loss,acc,val_loss,val_acc,seconds,imagesPerSec,lr\n1,1,0.5,1.5,0.25,2,50,0.001\n');
  });

  it('leaves lr empty for records of models trained before it was recorded', () => {
    expect(historyToCsv([rec(1), { ...rec(2), lr: 0.5 }]).split('\n').slice(1, 3)).toEqual(['1,1,0.5,1.5,0.25,2,50,', '2,1,0.5,1.5,0.25,2,50,0.5']);
  });
});
