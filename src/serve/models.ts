/**
 * The models a server answers with: each --model directory loaded once through the same
 * loader as predict (models/io.ts), named by its folder, and the bytes of its model.json and
 * weight files kept for the page, which runs the same model in the browser with stock tfjs.
 *
 * Only the files model.json lists are ever served (by name, from memory): a request names
 * a model and a file, never a path.
 */
import type * as tf from '@tensorflow/tfjs';
import { basename, join, resolve } from 'node:path';
import { SvhnError } from '../errors.js';
import { loadModelDir } from '../models/io.js';
import { MODEL_JSON, type ModelMetadata } from '../models/modelDir.js';

export interface ServedModel {
  name: string; // the folder's name; unique among the served models (a -2, -3 suffix otherwise)
  dir: string; // as given on the command line
  model: tf.LayersModel;
  metadata: ModelMetadata;
  /** model.json and each weight file it lists, by file name, as the browser fetches them. */
  files: Map<string, Buffer>;
}

/** URL-safe names: what a folder is called, with anything else replaced. */
function modelName(dir: string, taken: Set<string>): string {
  const base = basename(resolve(dir)).replace(/[^A-Za-z0-9._-]/g, '_') || 'model';
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  taken.add(name);
  return name;
}

/**
 * The files the page may fetch: the bytes the model was built from (loadModelDir keeps them,
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

/** Loads every directory (on the backend already started). The caller disposes them with disposeModels. */
export async function loadServedModels(dirs: string[]): Promise<ServedModel[]> {
  if (dirs.length === 0) throw new SvhnError('BAD_FLAG', '--model: expected at least one model directory');
  const taken = new Set<string>();
  const served: ServedModel[] = [];
  try {
    for (const dir of dirs) {
      const { model, metadata, files } = await loadModelDir(dir, { keepFiles: true });
      const entry: ServedModel = { name: modelName(dir, taken), dir, model, metadata, files: new Map() };
      served.push(entry); // disposed with the others if its files cannot be served
      entry.files = servableFiles(dir, files!);
    }
  } catch (e) {
    disposeModels(served);
    throw e;
  }
  return served;
}

export function disposeModels(models: ServedModel[]): void {
  for (const m of models) m.model.dispose();
}
