/**
 * SVHN's format-1 archives ("full numbers"): the whole photos with each digit's box, one
 * .tar.gz per split under the same --base-url as the cropped .mat files. Each holds
 * `<split>/1.png ... N.png`, `<split>/digitStruct.mat` and `<split>/see_bboxes.m`.
 *
 * Sizes and MD5 as issue 21 gives them (SVHN's page lists no checksums); no SHA-256 is known for
 * these, so they are verified on size and MD5 (sources.ts: sha256 is optional for this table
 * only; the cropped table's type still requires one).
 */
import type { SourceTable } from './sources.js';

export const SVHN_ARCHIVES: SourceTable = {
  train: { file: 'train.tar.gz', size: 404_141_560, md5: 'a649f4cb15c35520e8a8c342d4c0005a' },
  test: { file: 'test.tar.gz', size: 276_555_967, md5: '790d9c8d42f1fcbd219b59956c853a81' },
  extra: { file: 'extra.tar.gz', size: 1_955_489_752, md5: '606f41243d71ca4d5fe66dbaf1f02bee' },
};
