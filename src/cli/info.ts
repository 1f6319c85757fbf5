/**
 * `svhn info DIR`: what a saved model is: its layers (Keras' model.summary()), parameters,
 * FLOPs per image, input, training data and metrics. Reads the directory; trains nothing.
 */
import type { Command } from 'commander';
import { printText } from './output.js';

interface InfoFlags {
  json: boolean;
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('what a model directory holds: layers, parameters, FLOPs per image, input, training data, metrics')
    .argument('<dir>', 'model directory (models/<name>)')
    .option('--json', 'print one machine-readable object to stdout', false)
    .action(async (dir: string, opts: InfoFlags) => {
      // Rebuilding the model allocates its weights; the cpu backend does that at once, with no threads or native code.
      const { initBackend } = await import('../backend/index.js');
      await initBackend('cpu');
      const { summarizeModelDir, formatModelInfo } = await import('../models/summary.js');
      const info = await summarizeModelDir(dir);
      if (opts.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      else printText(formatModelInfo(info));
    });
}
