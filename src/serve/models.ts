/**
 * The models a server answers with: each --model directory loaded once, named by its folder,
 * and the bytes of its model.json and weight files kept for the page, which runs the same
 * model in the browser with stock tfjs. A directory whose metadata.json says `task: 'read'` is
 * a reader (tasks/read/reader.ts loadReader: the detector, and the digit model in its
 * `classifier/` folder, whose files are kept too); any other is a digit model, loaded as
 * predict loads it (models/io.ts).
 *
 * Only the files model.json lists are ever served (by name, from memory): a request names
 * a model and a file, never a path.
 */
import type * as tf from '@tensorflow/tfjs';
import { basename, join, resolve } from 'node:path';
import { SvhnError } from '../errors.js';
import { loadModelDir, readModelMetadata } from '../models/io.js';
import { MODEL_JSON, READER_CLASSIFIER_DIR, type ModelMetadata } from '../models/modelDir.js';
import type { Reader } from '../tasks/read/reader.js';

interface ServedBase {
  name: string; // the folder's name; unique among the served models (a -2, -3 suffix otherwise)
  dir: string; // as given on the command line
  metadata: ModelMetadata;
  /** model.json and each weight file it lists, by file name, as the browser fetches them (a reader's: its detector's). */
  files: Map<string, Buffer>;
}

/** A digit model: 32x32 crops in, 10 probabilities out (POST /v1/predict). */
export interface ServedClassifier extends ServedBase {
  task: 'classify';
  model: tf.LayersModel;
}

/** A reader: whole photos in, house numbers out (POST /v1/read). */
export interface ServedReader extends ServedBase {
  task: 'read';
  reader: Reader;
  /** Its classifier's model.json and weight files, served under NAME/classifier/. */
  classifierFiles: Map<string, Buffer>;
}

export type ServedModel = ServedClassifier | ServedReader;

/** URL-safe names: what a folder is called, with anything else replaced. */
function modelName(dir: string, taken: Set<string>): string {
  const base = basename(resolve(dir)).replace(/[^A-Za-z0-9._-]/g, '_') || 'model';
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  taken.add(name);
  return name;
}

/**
 * The files the page may fetch: the bytes the model was built from (the loaders keep them,
 * so the browser runs exactly what the server loaded). A weight path must be a bare file name
 * beside model.json, as saveLayersModel writes it; anything else is not served.
 */
function servableFiles(dir: string, files: Map<string, Buffer>): Map<string, Buffer> {
  for (const p of files.keys()) {
    if (p !== MODEL_JSON && (!/^[A-Za-z0-9._-]+$/.test(p) || p.startsWith('.'))) {
      throw new SvhnError('BAD_MODEL', `${join(dir, MODEL_JSON)}: expected weight files named beside it, got the path '${p}'`);
    }
  }
  return files;
}

async function loadServed(dir: string, name: string, served: ServedModel[]): Promise<void> {
  const metadata = await readModelMetadata(dir);
  if (metadata.task === 'read') {
    const { loadReader } = await import('../tasks/read/reader.js');
    const reader = await loadReader(dir, { keepFiles: true });
    const entry: ServedReader = { task: 'read', name, dir, metadata: reader.metadata, reader, files: new Map(), classifierFiles: new Map() };
    served.push(entry); // disposed with the others if its files cannot be served
    entry.files = servableFiles(dir, reader.files!.detector);
    entry.classifierFiles = servableFiles(join(dir, READER_CLASSIFIER_DIR), reader.files!.classifier);
    return;
  }
  const { model, files } = await loadModelDir(dir, { keepFiles: true });
  const entry: ServedClassifier = { task: 'classify', name, dir, model, metadata, files: new Map() };
  served.push(entry);
  entry.files = servableFiles(dir, files!);
}

/** Loads every directory (on the backend already started). The caller disposes them with disposeModels. */
export async function loadServedModels(dirs: string[]): Promise<ServedModel[]> {
  if (dirs.length === 0) throw new SvhnError('BAD_FLAG', '--model: expected at least one model directory');
  const taken = new Set<string>();
  const served: ServedModel[] = [];
  try {
    for (const dir of dirs) await loadServed(dir, modelName(dir, taken), served);
  } catch (e) {
    disposeModels(served);
    throw e;
  }
  return served;
}

export function disposeModels(models: ServedModel[]): void {
  for (const m of models) {
    if (m.task === 'read') m.reader.dispose();
    else m.model.dispose();
  }
}
