/**
 * `svhn train --model baseline|optimized|resnet` (and the aliases `train-baseline`, ...):
 * flags -> trainModel() -> a short summary on stdout, or with --json one machine-readable
 * object. Logs and the per-epoch progress go to stderr. `--init MODEL_DIR` fine-tunes: the run
 * starts from that model's weights, with DEFAULTS.finetune's learning rate, epochs and patience.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { BACKEND_CHOICES, DEFAULTS, defaultRecipe, LR_SCHEDULES, MODEL_NAMES, type TrainRecipe } from '../config.js';
import { MAX_AUGMENT_STRENGTH } from '../train/augment.js';
import type { TrainFlags } from '../train/resolve.js';
import { nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, TRAIN_THREADS_HELP, threadCount } from './options.js';


/**
 * "1 for baseline, 2 for optimized and resnet": one recipe field's default per architecture,
 * equal ones together, then where the offline sample's differs ("; 3 for optimized on the
 * synthetic sample").
 */
function perModel(field: keyof TrainRecipe): string {
  const groups = new Map<string, string[]>();
  const offline: string[] = [];
  for (const [model, recipe] of Object.entries(DEFAULTS.train.recipes) as Array<[string, TrainRecipe]>) {
    const v = String(recipe[field]);
    groups.set(v, [...(groups.get(v) ?? []), model]);
    const synthetic = String(defaultRecipe(model, { synthetic: true })[field]);
    if (synthetic !== v) offline.push(`${synthetic} for ${model}`);
  }
  const own = [...groups].map(([v, models]) => `${v} for ${models.join(' and ')}`).join(', ');
  return offline.length ? `${own}; ${offline.join(', ')} on the synthetic sample` : own;
}

/**
 * Train's flags from an object under the flags' own names (a tune trial's: its study's fixed
 * flags and its parameters), each through its flag's parser as on the command line.
 */
export async function trainFlagsOf(values: Record<string, unknown>, source: string): Promise<TrainFlags> {
  const { Command } = await import('commander');
  const cmd = addTrainOptions(new Command('train'), true);
  cmd.parse([], { from: 'user' });
  const { applyConfigObject } = await import('./configFile.js');
  return applyConfigObject<TrainFlags>(cmd, values, source);
}

function addTrainOptions(cmd: Command, withModel: boolean): Command {
  const d = DEFAULTS.train;
  const f = DEFAULTS.finetune;
  if (withModel) cmd.option('--model <name>', `architecture: ${MODEL_NAMES.join(', ')} (default: optimized; with --init, the parent's)`);
  return cmd
    .option('--config <file>', 'flags from a JSON object under their own names, e.g. a model\'s args.json ({"model": "resnet", "batch-size": 128}); flags given here win')
    .option('--data-dir <dir>', 'where `svhn preprocess` wrote its cache (<dir>/cache)', DEFAULTS.dataDir)
    .option('--classifier <model_dir>', `--model reader: the digit model that reads each box the reader finds, copied into the reader (default: ${DEFAULTS.modelsDir}/optimized; with --init, the parent reader's)`)
    .option('--init <model_dir>', `fine-tune: start from a trained model directory's weights (same architecture); defaults become --lr ${f.lr}, --epochs ${f.epochs}, --patience ${f.patience}, a constant rate, no weight decay or label smoothing, BatchNorm's statistics measured on your training images at the start`)
    .option('--epochs <n>', `epochs to train (default: ${perModel('epochs')}; ${f.epochs} with --init)`, positiveInt)
    .option('--batch-size <n>', 'images per training step', positiveInt, d.batchSize)
    .option('--lr <rate>', `Adam learning rate, a schedule's peak (default: ${perModel('lr')}; ${f.lr} with --init)`, positiveNumber)
    .option('--schedule <name>', `learning rate over the run: ${LR_SCHEDULES.join(', ')} (default: ${perModel('schedule')})`, oneOf(LR_SCHEDULES))
    .option('--warmup-epochs <n>', `cosine: epochs of linear warm-up to --lr (default: ${perModel('warmupEpochs')})`, nonNegativeNumber)
    .option('--weight-decay <rate>', `AdamW's decoupled weight decay on the kernels; 0 is Adam (default: ${perModel('weightDecay')})`, nonNegativeNumber)
    .option('--label-smoothing <e>', `train on targets y(1-e) + e/10 (default: ${perModel('labelSmoothing')})`, nonNegativeNumber)
    .option('--recalibrate-bn', `with --init: start from BatchNorm statistics measured on the training images, not the parent's (default: ${f.recalibrateBn ? 'on' : 'off'} with --init)`)
    .option('--no-recalibrate-bn', "with --init: start from the parent's BatchNorm statistics")
    .option('--seed <n>', 'seed of initialisers, dropout, shuffling, augmentation and --limit sampling', nonNegativeInt, d.seed)
    .option('--limit <n>', 'train on at most N cached training images, stratified (default: all)', positiveInt)
    .option('--val-limit <n>', 'validate on at most N cached validation images, stratified (default: all)', positiveInt)
    .option('--extra', 'also train on the extra split, streamed in chunks (needs `svhn preprocess --extra`)', false)
    .option('--augment', `random small shifts, scale, rotation and contrast (no flips), seeded (default: ${d.augment.synthetic ? 'on' : 'off'} for the synthetic sample, ${d.augment.other ? 'on' : 'off'} for other data)`)
    .option('--no-augment', 'train on the cached images as they are')
    .option('--augment-strength <s>', `times the augmentation ranges (1: shifts 2 px, scale 10%, rotation 10 degrees, contrast 20%; at most ${MAX_AUGMENT_STRENGTH}; never flips)`, nonNegativeNumber, d.augmentStrength)
    .option('--patience <n>', `stop after N epochs without a lower val_loss, restoring the best weights (default: ${perModel('patience')}; ${f.patience} with --init)`, positiveInt)
    .option('--out <dir>', `model directory (default: ${DEFAULTS.modelsDir}/<model>; with --init, ${DEFAULTS.modelsDir}/<model>-finetuned)`)
    .option('--force', 'replace the model already in --out (a folder holding anything else is refused all the same)', false)
    .option('--resume', 'continue the interrupted run from <out>.checkpoint (a fine-tune: with the same --init)', false)
    .option('--backend <name>', `engine: ${BACKEND_CHOICES.join(', ')}`, oneOf(BACKEND_CHOICES), d.backend)
    .option('--threads <n>', TRAIN_THREADS_HELP, threadCount)
    .option('--json', 'print a machine-readable summary on stdout', false);
}

/** The architecture: the alias's or --model's; else, fine-tuning, the parent's (trainModel checks they agree); else optimized. */
async function resolveModel(fixed: string | undefined, flags: TrainFlags): Promise<string> {
  const given = fixed ?? flags.model;
  if (given !== undefined || flags.init === undefined) return given ?? 'optimized';
  const { parentArchitecture } = await import('../train/init.js');
  return parentArchitecture(flags.init);
}

async function runTrain(fixed: string | undefined, given: TrainFlags, cmd: Command): Promise<void> {
  const flags = given.config ? await (await import('./configFile.js')).applyConfigFile<TrainFlags>(cmd, given.config, fixed ? { model: fixed } : {}) : given;
  const { listModels } = await import('../models/registry.js');
  const { SvhnError } = await import('../errors.js');
  const model = await resolveModel(fixed, flags);
  if (!listModels().includes(model)) {
    throw new SvhnError('BAD_FLAG', `--model: expected one of ${listModels().join(', ')}, got '${model}'`);
  }
  const { trainModel, checkpointDirFor } = await import('../train/loop.js');
  const { resolveTrainOptions } = await import('../train/resolve.js');
  const outDir = flags.out ?? join(DEFAULTS.modelsDir, flags.init ? `${model}-finetuned` : model);
  // Ctrl-C: the checkpoint on disk is always whole (written atomically), so say how to go on;
  // --resume only once one exists (before the first epoch ends there is none to resume).
  const { setInterruptNote } = await import('../util/interrupt.js');
  const { hasCheckpoint } = await import('../train/checkpoint.js');
  const ckptDir = checkpointDirFor(outDir);
  setInterruptNote(() =>
    hasCheckpoint(ckptDir)
      ? `nothing was written to ${outDir}. Run the same command with --resume to continue from ${ckptDir}`
      : `nothing was written to ${outDir} and no checkpoint was saved yet. Run the same command again to start over`,
  );
  const result = await trainModel(await resolveTrainOptions(model, flags, outDir));
  const m = result.metadata;
  if (flags.json) {
    const summary = {
      outDir: result.outDir,
      model: m.architecture,
      synthetic: m.synthetic,
      backend: m.backend,
      threads: m.threads,
      params: m.params,
      epochsRun: m.epochsRun,
      bestEpoch: m.bestEpoch,
      stoppedEarly: m.stoppedEarly,
      resumedFromEpoch: result.resumedFromEpoch,
      validation: m.validation,
      wallTimeSec: m.wallTimeSec,
      trainImagesPerSec: m.trainImagesPerSec,
      hyperparameters: m.hyperparameters,
      ...(m.parent ? { parent: m.parent } : {}),
      ...(m.calibration ? { calibration: m.calibration } : {}),
      history: result.history,
    };
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  } else {
    const { printText } = await import('./output.js'); // --out and the parent's path are the user's: printable
    printText(
      [
        `model      ${result.outDir} (${m.architecture}, ${m.params.total.toLocaleString('en-US')} parameters)${m.synthetic ? '  SYNTHETIC data: not SVHN accuracy' : ''}`,
        ...(m.parent ? [`fine-tuned from ${m.parent.dir} (lr ${m.hyperparameters.lr}, weights sha256 ${m.parent.weightsSha256.slice(0, 12)})`] : []),
        `backend    ${m.backend} (${m.threads} thread${m.threads === 1 ? '' : 's'}), ${m.trainImagesPerSec.toFixed(1)} images/s training`,
        `epochs     ${m.epochsRun}${m.stoppedEarly ? ' (stopped early)' : ''}, best epoch ${m.bestEpoch} by val_acc`,
        `validation loss ${m.validation.loss.toFixed(4)}, accuracy ${(100 * m.validation.acc).toFixed(2)}%`,
        ...(m.calibration ? [`calibration temperature ${m.calibration.temperature.toFixed(3)} on val: ECE ${m.calibration.eceBefore.toFixed(4)} -> ${m.calibration.eceAfter.toFixed(4)}, NLL ${m.calibration.nllBefore.toFixed(4)} -> ${m.calibration.nllAfter.toFixed(4)}`] : []),
        `wall time  ${m.wallTimeSec.toFixed(1)} s`,
      ].join('\n') + '\n',
    );
  }
}

export function registerTrain(program: Command): void {
  addTrainOptions(
    program.command('train').description('train a digit classifier on the preprocess cache; saves model, metadata, history and curves to --out'),
    true,
  ).action((flags: TrainFlags, cmd: Command) => runTrain(undefined, flags, cmd));
  for (const model of MODEL_NAMES) {
    addTrainOptions(program.command(`train-${model}`).description(`same as \`svhn train --model ${model}\``), false).action((flags: TrainFlags, cmd: Command) =>
      runTrain(model, flags, cmd),
    );
  }
}
