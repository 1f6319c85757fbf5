/**
 * `svhn export --model DIR --format onnx [--out FILE]`: the model as a file another runtime
 * loads, written beside the model directory (models/optimized.onnx) and proven before it is
 * kept: ONNX Runtime runs it on 64 images and every probability must be predict's within 1e-5.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BACKEND_CHOICES, DEFAULTS } from '../config.js';
import { EXPORT_FORMATS, EXPORT_FORMAT_NAMES, PROOF_IMAGES, PROOF_TOLERANCE, type ExportFormatName } from '../export/formats.js';
import { positiveInt, THREADS_HELP, threadCount } from './options.js';
import { printText } from './output.js';

interface ExportFlags {
  model: string;
  format: ExportFormatName;
  out?: string;
  force: boolean;
  images: number;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
  json: boolean;
}

function formatName(value: string): ExportFormatName {
  if (!(EXPORT_FORMAT_NAMES as string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${EXPORT_FORMAT_NAMES.join(', ')}, got '${value}'`);
  return value as ExportFormatName;
}

export function registerExport(program: Command): void {
  const formats = EXPORT_FORMAT_NAMES.map((f) => `  ${f.padEnd(6)} ${EXPORT_FORMATS[f].description}; proven in ${EXPORT_FORMATS[f].runtime}`).join('\n');
  program
    .command('export')
    .description('write a digit model as a file other runtimes load (ONNX), proven equal to `svhn predict`')
    .requiredOption('--model <dir>', 'model directory written by `svhn train` (required; e.g. models/optimized)')
    .requiredOption('--format <name>', `file format: ${EXPORT_FORMAT_NAMES.join(', ')} (required)`, formatName)
    .option('--out <file>', 'where to write it (default: beside the model directory, <dir>.onnx); never inside the model directory')
    .option('--force', 'replace --out if it exists', false)
    .option('--images <n>', 'images the proof runs through both the file and predict', positiveInt, PROOF_IMAGES)
    .addOption(new Option('--backend <name>', 'tfjs backend for the predict side of the proof').choices(BACKEND_CHOICES).default(DEFAULTS.train.backend))
    .option('--threads <n>', THREADS_HELP, threadCount)
    .option('--json', 'print a machine-readable summary on stdout', false)
    .addHelpText(
      'after',
      `
Formats:
${formats}
The file's metadata names its input (32x32 RGB scaled to [0, 1], NHWC), the model, its
architecture, whether it was trained on synthetic data, the calibration temperature applied
inside it (metadata.json calibration.temperature, else 1) and the svhn version.
The proof: the written file runs in its runtime on deterministic synthetic crops; unless every
probability is within ${PROOF_TOLERANCE} of predict's, the file is removed and the exit code is 1.`,
    )
    .action(async (flags: ExportFlags) => {
      const { runExport } = await import('../export/run.js');
      const summary = await runExport({
        modelDir: flags.model, format: flags.format, out: flags.out, force: flags.force, images: flags.images, backend: flags.backend, threads: flags.threads,
      });
      if (flags.json) {
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      printText(
        `wrote ${summary.out} (${summary.format}, ${(summary.bytes / 1024).toFixed(0)} KiB, ${summary.architecture}${summary.temperature !== 1 ? `, temperature ${summary.temperature}` : ''})\n` +
          `proof: ${summary.runtime} against svhn predict (${summary.backend}) on ${summary.images} images: max |diff| ${summary.maxAbsDiff.toExponential(2)} <= ${summary.tolerance}, same digit on ${summary.agree} of ${summary.images}\n`,
      );
    });
}
