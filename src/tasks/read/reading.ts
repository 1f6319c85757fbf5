/**
 * What a reader answers for one photo (the contract between the reader model in this folder,
 * `svhn read`, serve's /v1/read and the page).
 */
import type { Box } from '../../data/images/photoLabels.js';

/** A photo's pixels: RGB, 3 bytes per pixel, rows top to bottom (sharp's raw output). */
export interface RgbPhoto {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DigitReading {
  digit: number; // 0..9
  /** The classifier's probability of `digit` times the detector's score for its box, in [0, 1]. */
  confidence: number;
  /** In the photo's own pixels, [left, top, right, bottom), fractional. */
  box: Box;
}

export interface Reading {
  /** Digits left to right; '' when no number was found. */
  number: string;
  /** Of the whole number: the product of its digits' confidences; for no number, how sure the reader is that there is none. */
  confidence: number;
  digits: DigitReading[];
}
