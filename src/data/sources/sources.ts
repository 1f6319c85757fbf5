/**
 * Where SVHN's cropped-digit files come from and what they must hash to: the one typed
 * source-of-truth table. `svhn download` verifies against it; a mirror or a test passes its
 * own table with the same shape.
 *
 * Checksums as published: MD5 from torchvision's datasets/svhn.py, sizes and SHA-256 from
 * tensorflow-datasets' url_checksums for svhn_cropped.
 */
import type { SourceSplit } from '../../config.js';

export interface SourceFile {
  file: string; // name under --base-url and under --data-dir, e.g. train_32x32.mat
  size: number; // bytes
  md5: string; // lowercase hex
  sha256: string; // lowercase hex
}

export type SourceTable = Record<SourceSplit, SourceFile>;

export const SVHN_SOURCES: SourceTable = {
  train: {
    file: 'train_32x32.mat',
    size: 182_040_794,
    md5: 'e26dedcc434d2e4c54c9b2d4a06d8373',
    sha256: '435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8',
  },
  test: {
    file: 'test_32x32.mat',
    size: 64_275_384,
    md5: 'eb5a983be6a315427106f1b164d9cef3',
    sha256: 'cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b',
  },
  extra: {
    file: 'extra_32x32.mat',
    size: 1_329_278_602,
    md5: 'a93ce644f1a588dc4d68dda5feec44a7',
    sha256: 'a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3',
  },
};

/** `<baseUrl>/<file>`, tolerating a trailing slash on the base. */
export function sourceUrl(baseUrl: string, source: SourceFile): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(source.file)}`;
}
