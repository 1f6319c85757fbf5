/**
 * The model the serving and prediction benchmarks run: models/optimized if trained, else a
 * fresh optimized network saved once under bench-out/ (an untrained network predicts at the
 * same speed). Needs dist/ (npm run build).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(ROOT, 'dist', p);

export async function benchModelDir() {
  const trained = join(ROOT, 'models', 'optimized');
  if (existsSync(join(trained, 'model.json'))) return { dir: trained, trained: true };
  const dir = join(ROOT, 'bench-out', 'predict-model-untrained');
  if (!existsSync(join(dir, 'metadata.json'))) {
    // tfjs' own cpu backend, not svhn's initBackend: the run that follows picks its backend itself.
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const { buildModel, countParams } = await import(dist('models/registry.js'));
    const { saveLayersModel } = await import(dist('models/io.js'));
    const model = buildModel('optimized', { seed: 42 });
    mkdirSync(dir, { recursive: true });
    await saveLayersModel(model, dir);
    writeFileSync(
      join(dir, 'metadata.json'),
      JSON.stringify({ name: 'optimized (untrained)', architecture: 'optimized', inputShape: [32, 32, 3], numClasses: 10, params: countParams(model), synthetic: true }),
    );
    model.dispose();
  }
  return { dir, trained: false };
}
