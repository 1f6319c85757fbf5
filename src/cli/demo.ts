/**
 * `svhn demo` (what `npm start` runs): the whole pipeline on the embedded default.
 * Real SVHN in --data-dir when train_32x32.mat and test_32x32.mat are there, else the
 * offline synthetic sample (generated once, and marked SYNTHETIC in every output):
 * preprocess -> train the optimized model on a short schedule -> evaluate on the test split.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BACKEND_CHOICES, DEFAULTS, defaultRecipe, type BackendChoice } from '../config.js';
import { getLogger } from '../log.js';
import { nonNegativeInt, oneOf, positiveInt } from './options.js';
import { printText } from './output.js';

/**
 * The command as the demo's reader can run it: the demo is `npm start` right after `npm install`,
 * which puts no `svhn` on the PATH; `npx svhn` finds bin/svhn.js in the checkout (README).
 */
const SVHN = 'npx svhn';

interface DemoFlags {
  dataDir: string;
  out: string;
  force: boolean;
  epochs: number;
  limit: number;
  valLimit: number;
  seed: number;
  backend: BackendChoice;
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const log = getLogger();
  const t0 = Date.now();
  // before any work: a folder the model may not replace answers at once
  const { assertModelOutReplaceable } = await import('../train/outDir.js');
  await assertModelOutReplaceable(flags.out, { force: flags.force, madeBy: 'demo' });
  const haveReal = ['train', 'test'].every((s) => existsSync(join(flags.dataDir, `${s}_32x32.mat`)));
  if (!haveReal) {
    log.info(`no SVHN files in ${flags.dataDir}/: generating the offline synthetic sample (${SVHN} download --synthetic)`);
    const { generateSynthetic } = await import('../data/synthetic/synthetic.js');
    await generateSynthetic({ dataDir: flags.dataDir, size: 'small', seed: DEFAULTS.synthetic.seed, splits: ['train', 'test'] });
  }

  log.info('step 1/3: preprocess');
  const { preprocess, formatPreprocessSummary } = await import('../data/cache/preprocess.js');
  const pre = await preprocess({ dataDir: flags.dataDir });
  printText(formatPreprocessSummary(pre) + '\n');

  log.info(`step 2/3: train the optimized model for ${flags.epochs} epochs on up to ${flags.limit} images`);
  const { trainModel, checkpointDirFor } = await import('../train/loop.js');
  const onInterrupt = await removeCheckpointOnInterrupt(flags.out, checkpointDirFor(flags.out));
  const trained = await trainModel({
    // train's recipe for this data (the offline sample has its own), on the demo's short schedule
    ...defaultRecipe('optimized', { synthetic: pre.manifest.synthetic }),
    epochs: flags.epochs,
    model: 'optimized',
    dataDir: flags.dataDir,
    batchSize: DEFAULTS.train.batchSize,
    seed: flags.seed,
    limit: flags.limit,
    valLimit: flags.valLimit,
    extra: false,
    outDir: flags.out,
    force: flags.force,
    madeBy: 'demo',
    resume: false,
    resumeHint: 'the demo does not resume: it starts over',
    backend: flags.backend,
    onEpochEnd: onInterrupt.checkpointSaved,
  });
  onInterrupt.done();
  const m = trained.metadata;
  printText(
    `\ntrained ${flags.out}: ${m.epochsRun} epochs on ${m.backend}, ${m.trainImagesPerSec.toFixed(0)} images/s, ` +
      `val accuracy ${(100 * m.validation.acc).toFixed(2)}%\n\n`,
  );

  log.info('step 3/3: evaluate on the test split');
  const { runEvaluate } = await import('../evaluate/run.js');
  const { formatEvaluationText } = await import('../evaluate/outputs.js');
  const evaluated = await runEvaluate({ modelDirs: [flags.out], dataDir: flags.dataDir, split: 'test', batchSize: DEFAULTS.evaluate.batchSize });
  for (const e of evaluated.models) printText(formatEvaluationText(e.result, e.outDir));

  const synthetic = pre.manifest.synthetic;
  const dataFlag = flags.dataDir === DEFAULTS.dataDir ? '' : ` --data-dir ${flags.dataDir}`;
  printText(
    `\ndemo done in ${((Date.now() - t0) / 1000).toFixed(0)} s` +
      (synthetic
        ? `: SYNTHETIC offline sample, so this accuracy says nothing about SVHN. Put the real files in ${flags.dataDir}/ (${SVHN} download${dataFlag}) and run again.\n`
        : '.\n') +
      'next:\n' +
      `  ${SVHN} train --model optimized${dataFlag}  (the full schedule)\n` +
      `  ${SVHN} predict IMAGES --model ${flags.out}\n` +
      `  ${SVHN} report --model ${flags.out}${dataFlag} --out report.html\n`,
  );
}

/**
 * Ctrl-C while the demo trains: a short run that starts over rather than resumes, so once its
 * run has saved a checkpoint, the checkpoint goes with the other temporaries, and the line
 * says so. A checkpoint that was there before stays until the run replaces it.
 */
async function removeCheckpointOnInterrupt(out: string, ckptDir: string): Promise<{ checkpointSaved: () => void; done: () => void }> {
  const { setInterruptNote, trackTemp } = await import('../util/interrupt.js');
  let release: (() => void) | undefined;
  setInterruptNote(() =>
    release
      ? `removed the demo's checkpoint ${ckptDir} and wrote nothing to ${out}. Run \`${SVHN} demo\` again to start over`
      : `nothing was written to ${out}. Run \`${SVHN} demo\` again to start over`,
  );
  return {
    checkpointSaved: () => {
      release ??= trackTemp(ckptDir);
    },
    done: () => {
      release?.();
      setInterruptNote(undefined);
    },
  };
}

export function registerDemo(program: Command): void {
  const d = DEFAULTS.demo;
  program
    .command('demo')
    .description('the whole pipeline on a short schedule: real SVHN in --data-dir if present, else the offline synthetic sample (npm start)')
    .option('--data-dir <dir>', 'SVHN .mat files and the preprocess cache', DEFAULTS.dataDir)
    .option('--out <dir>', 'model directory for the demo model (an earlier demo model there is replaced)', join(DEFAULTS.modelsDir, 'demo'))
    .option('--force', 'replace a model in --out that `svhn train` made', false)
    .option('--epochs <n>', 'training epochs', positiveInt, d.epochs)
    .option('--limit <n>', 'training images used', positiveInt, d.limit)
    .option('--val-limit <n>', 'validation images used', positiveInt, d.valLimit)
    .option('--seed <n>', 'training seed', nonNegativeInt, DEFAULTS.train.seed)
    .option('--backend <name>', `engine: ${BACKEND_CHOICES.join(', ')}`, oneOf(BACKEND_CHOICES), DEFAULTS.train.backend)
    .action((flags: DemoFlags) => runDemo(flags));
}
