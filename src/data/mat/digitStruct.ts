/**
 * SVHN's format-1 labels: `<split>/digitStruct.mat`, a MATLAB v7.3 file, that is HDF5 behind a
 * 512-byte user block (MATLAB's header text). Read with h5wasm, the HDF5 C library compiled
 * to wasm: its Node build reads the file from disk as it needs it (the 2 GB extra archive's
 * digitStruct is never held whole), and it dereferences object references, which the layout
 * is made of (jsfive, the pure-JS reader, stops at the user block and returns no values for
 * reference datasets).
 *
 *   /digitStruct/name   (N,1) references, each to a (len,1) uint16 char array: '1.png'
 *   /digitStruct/bbox   (N,1) references, each to a group with datasets height, label, left,
 *                       top, width: (k,1) doubles when the photo has k = 1 digit, else (k,1)
 *                       references, each to a (1,1) double
 *
 * Labels are 1..10 (10 is the digit 0). Boxes are in pixels, left/top the 0-based offset of the
 * box's first column/row: SVHN's see_bboxes.m shows rows top+1 .. top+height (MATLAB counts
 * from 1), that is [top, top + height) here.
 */
import { open } from 'node:fs/promises';
import { SvhnError, ioError } from '../../errors.js';
import type { Box } from '../images/photoLabels.js';

/** One photo as digitStruct describes it, in the file's order. */
export interface DigitStructEntry {
  /** Photo file name in the split's folder, e.g. '1.png'. */
  name: string;
  /** Digits 0-9, left to right as listed (label 10 already turned into 0). */
  digits: number[];
  /** One per digit: [left, top, left + width, top + height) in photo pixels, rounded (roundEdge). */
  boxes: Box[];
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const BOX_FIELDS = ['label', 'left', 'top', 'width', 'height'] as const;

/**
 * A box edge to an integer pixel: SVHN's values are whole numbers stored as doubles, which
 * see_bboxes.m uses as indices as they are (MATLAB refuses a fractional index). A fractional one
 * (not in SVHN's files) is rounded to the nearest, half away from zero as MATLAB's round() does;
 * right and bottom are rounded as the edges left + width and top + height, so a box never
 * grows or shrinks by the rounding of two terms.
 */
export function roundEdge(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/** Whether `path` holds an HDF5 signature where HDF5 looks for one (0, 512, 1024, ... bytes in). */
async function hasHdf5Signature(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw ioError(path, 'read', e);
  }
  try {
    const size = (await fh.stat()).size;
    for (let at = 0; at + 8 <= size && at <= 1 << 20; at = at === 0 ? 512 : at * 2) {
      const head = Buffer.alloc(8);
      await fh.read(head, 0, 8, at);
      if (head.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

type H5 = typeof import('h5wasm/node');
let h5Ready: Promise<H5> | undefined;

/** h5wasm, loaded once; HDF5's errors are made to throw instead of printing to stderr. */
function loadH5(): Promise<H5> {
  h5Ready ??= (async () => {
    const h5 = await import('h5wasm/node');
    const module = await h5.ready;
    module.activate_throwing_error_handler();
    return h5;
  })();
  return h5Ready;
}

/** HDF5's error text (a stack, outermost call first) to its innermost cause, e.g. 'address of object past end of allocation'. */
function hdf5Reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const calls = text.split('\n').map((l) => l.trim()).filter((l) => /^#\d+:/.test(l));
  const innermost = calls.pop() ?? text.split('\n')[0] ?? '';
  return innermost.replace(/^#\d+: .* in [\w]+\(\): /, '') || 'unknown HDF5 error';
}

/**
 * Reads every photo's name, digits and boxes from a digitStruct.mat at `path`. Errors are one
 * line naming the file (as `opts.name` calls it, else its path) (and the photo, 1-based as in digitStruct): not HDF5, no
 * /digitStruct/name or bbox, name and bbox counts that differ, a reference that does not
 * resolve, a label outside 1..10, a field count that differs from the label count.
 */
export async function readDigitStruct(path: string, opts: { name?: string } = {}): Promise<DigitStructEntry[]> {
  const label = opts.name ?? path; // what messages call the file (extraction: the archive and the entry)
  if (!(await hasHdf5Signature(path))) {
    throw new SvhnError('BAD_MAT', `${label}: not an HDF5 file (MATLAB v7.3): expected the HDF5 signature at byte 0 or 512`, {
      suggestion: 'digitStruct.mat comes from SVHN\'s format-1 archives ({train,test,extra}.tar.gz)',
    });
  }
  const h5 = await loadH5();
  let file: InstanceType<H5['File']>;
  try {
    file = new h5.File(path, 'r');
  } catch (e) {
    throw new SvhnError('BAD_MAT', `${label}: HDF5 cannot open it (${hdf5Reason(e)})`);
  }
  try {
    return readEntries(h5, file, label);
  } finally {
    file.close();
  }
}

type H5File = InstanceType<H5['File']>;
type H5Dataset = InstanceType<H5['Dataset']>;
type H5Group = InstanceType<H5['Group']>;

function readEntries(h5: H5, file: H5File, path: string): DigitStructEntry[] {
  const dataset = (where: string): H5Dataset => {
    let got: unknown;
    try {
      got = file.get(where);
    } catch (e) {
      throw new SvhnError('BAD_MAT', `${path}: cannot read ${where} (${hdf5Reason(e)})`);
    }
    if (!(got instanceof h5.Dataset)) throw new SvhnError('BAD_MAT', `${path}: expected a dataset ${where} (SVHN's format-1 digitStruct), found ${got ? 'a group' : 'nothing'}`);
    return got;
  };
  const names = referencesOf(h5, dataset('/digitStruct/name'), `${path}: /digitStruct/name`);
  const boxes = referencesOf(h5, dataset('/digitStruct/bbox'), `${path}: /digitStruct/bbox`);
  if (names.refs.length !== boxes.refs.length) {
    throw new SvhnError('BAD_MAT', `${path}: /digitStruct/name lists ${names.refs.length} photos but /digitStruct/bbox ${boxes.refs.length}: expected one bbox per name`);
  }
  const resolve = referenceResolver(h5, file);
  const entries: DigitStructEntry[] = [];
  for (let i = 0; i < names.refs.length; i++) {
    const at = `${path}: photo ${i + 1}`;
    const nameTarget = resolve(names.refs[i]!, `${at}: its name reference`);
    if (!(nameTarget instanceof h5.Dataset)) throw new SvhnError('BAD_MAT', `${at}: its name reference leads to a group, expected a char array`);
    const name = decodeChars(nameTarget, at);
    const boxGroup = resolve(boxes.refs[i]!, `${at} (${name}): its bbox reference`);
    if (!(boxGroup instanceof h5.Group)) throw new SvhnError('BAD_MAT', `${at} (${name}): its bbox reference leads to a dataset, expected a group of height, label, left, top, width`);
    entries.push(readBoxes(h5, resolve, boxGroup, `${at} (${name})`, name));
  }
  return entries;
}

/** A (N,1) or (1,N) reference dataset's references. */
function referencesOf(h5: H5, ds: H5Dataset, at: string): { refs: unknown[] } {
  const shape = ds.shape ?? [];
  if (shape.length !== 2 || (shape[0] !== 1 && shape[1] !== 1)) throw new SvhnError('BAD_MAT', `${at}: expected shape (N,1), got (${shape.join(',')})`);
  const value = ds.value;
  if (!Array.isArray(value) || !value.every((r) => r instanceof h5.Reference)) {
    throw new SvhnError('BAD_MAT', `${at}: expected object references, got ${ds.dtype}`);
  }
  return { refs: value };
}

/** The object a reference points at; a broken one is an error naming `what`. */
type Resolve = (ref: unknown, what: string) => H5Dataset | H5Group;

/** An object reference's 8 bytes: the object header's address in the file. */
function addressOf(refData: ArrayLike<number>): number {
  let address = 0;
  for (let i = 7; i >= 0; i--) address = address * 256 + (refData[i] ?? 0); // little-endian; HDF5 addresses stay far below 2^53
  return address;
}

/**
 * Resolves references through an index of MATLAB's `/#refs#` group (address -> name), built in
 * one pass. h5wasm's own dereference asks HDF5 for the object's path (H5Iget_name), which
 * searches the whole file on every call: quadratic, hours for a train-size digitStruct. Creating
 * a reference from each `/#refs#` name reads the address by lookup instead. A reference that is
 * not in the index (an object elsewhere, or a broken one) goes through h5wasm's dereference,
 * whose error is the message.
 */
function referenceResolver(h5: H5, file: H5File): Resolve {
  const index = new Map<number, string>();
  const refsGroup = file.get('/#refs#');
  if (refsGroup instanceof h5.Group) {
    for (const name of refsGroup.keys()) {
      const path = `/#refs#/${name}`;
      try {
        index.set(addressOf(h5.Module.create_object_reference(file.file_id, path)), path);
      } catch {
        // not referenceable (a broken link): any reference to it fails below, naming the photo
      }
    }
  }
  return (ref, what) => {
    let got: unknown;
    try {
      const path = index.get(addressOf((ref as InstanceType<H5['Reference']>).ref_data));
      got = path !== undefined ? file.get(path) : file.dereference(ref as InstanceType<H5['Reference']>);
    } catch (e) {
      throw new SvhnError('BAD_MAT', `${what} does not resolve (${hdf5Reason(e)})`);
    }
    if (!(got instanceof h5.Dataset || got instanceof h5.Group)) throw new SvhnError('BAD_MAT', `${what} does not resolve`);
    return got;
  };
}

/** A uint16 char array (MATLAB's char) as text. */
function decodeChars(ds: H5Dataset, at: string): string {
  const value = ds.value;
  if (!(value instanceof Uint16Array) || value.length === 0) throw new SvhnError('BAD_MAT', `${at}: its name is not a uint16 char array (got ${ds.dtype})`);
  const name = String.fromCharCode(...value);
  // A name is a file in the split's folder: one path segment.
  if (!/^[^/\\\0]+$/.test(name) || name === '.' || name === '..') throw new SvhnError('BAD_MAT', `${at}: name '${name}' is not a plain file name`);
  return name;
}

/** One field's k values: doubles stored directly (k = 1) or references to (1,1) doubles (k > 1). */
function readField(h5: H5, resolve: Resolve, group: H5Group, field: string, at: string): number[] {
  const ds = group.get(field);
  if (!(ds instanceof h5.Dataset)) throw new SvhnError('BAD_MAT', `${at}: its bbox has no '${field}' dataset`);
  const value = ds.value;
  if (value instanceof Float64Array) return Array.from(value);
  if (Array.isArray(value) && value.every((r) => r instanceof h5.Reference)) {
    return value.map((ref, j) => {
      const target = resolve(ref, `${at}: bbox ${field} ${j + 1}'s reference`);
      const v = target instanceof h5.Dataset ? target.value : undefined;
      if (!(v instanceof Float64Array) || v.length !== 1) throw new SvhnError('BAD_MAT', `${at}: bbox ${field} ${j + 1}: expected a (1,1) double`);
      return v[0]!;
    });
  }
  throw new SvhnError('BAD_MAT', `${at}: bbox ${field}: expected doubles or references to doubles, got ${ds.dtype}`);
}

function readBoxes(h5: H5, resolve: Resolve, group: H5Group, at: string, name: string): DigitStructEntry {
  const [label, left, top, width, height] = BOX_FIELDS.map((f) => readField(h5, resolve, group, f, at)) as [number[], number[], number[], number[], number[]];
  for (const [f, values] of [['left', left], ['top', top], ['width', width], ['height', height]] as const) {
    if (values.length !== label.length) throw new SvhnError('BAD_MAT', `${at}: bbox has ${label.length} labels but ${values.length} ${f} values: expected one per digit`);
    if (!values.every(Number.isFinite)) throw new SvhnError('BAD_MAT', `${at}: bbox ${f} holds a value that is not a finite number`);
  }
  const digits = label.map((l, j) => {
    if (!Number.isInteger(l) || l < 1 || l > 10) throw new SvhnError('BAD_MAT', `${at}: digit ${j + 1} has label ${l}: expected 1..10 (10 is the digit 0)`);
    return l % 10;
  });
  const boxes = label.map((_, j): Box => {
    const l = left[j]!, t = top[j]!;
    const box: Box = [roundEdge(l), roundEdge(t), roundEdge(l + width[j]!), roundEdge(t + height[j]!)];
    if (box[2] <= box[0] || box[3] <= box[1]) throw new SvhnError('BAD_MAT', `${at}: digit ${j + 1}'s box (left ${l}, top ${t}, width ${width[j]}, height ${height[j]}) is empty: expected width and height of at least a pixel`);
    return box;
  });
  return { name, digits, boxes };
}
