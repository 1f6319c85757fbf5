/**
 * TEST DOUBLE, not a model: a Reader that answers fixed readings chosen by the photo's size,
 * so the command layer (rows, abstention, box scaling, drawing) is tested without a trained
 * reader. It records the size of every photo it was given.
 */
import type { Reader } from '../../src/tasks/read/reader.js';
import type { Reading, RgbPhoto } from '../../src/tasks/read/reading.js';

export class FixedReader implements Reader {
  readonly name = 'fixed-test-double';
  readonly metadata = { synthetic: false };
  readonly seen: Array<[number, number]> = [];
  disposed = false;

  /** `answers`: "WxH" of the photo as the reader receives it -> its reading. */
  constructor(private readonly answers: Record<string, Reading>) {}

  async read(photo: RgbPhoto): Promise<Reading> {
    if (photo.data.length !== photo.width * photo.height * 3) throw new Error(`FixedReader: ${photo.data.length} bytes for ${photo.width}x${photo.height} RGB`);
    this.seen.push([photo.width, photo.height]);
    const answer = this.answers[`${photo.width}x${photo.height}`];
    if (!answer) throw new Error(`FixedReader: no reading for a ${photo.width}x${photo.height} photo`);
    return answer;
  }

  dispose(): void {
    this.disposed = true;
  }
}
