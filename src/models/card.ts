/**
 * MODEL_CARD.md (after Mitchell et al. 2019, "Model Cards for Model Reporting"): what a model
 * directory's model is for and not for, its data and whether it was SYNTHETIC, its input,
 * its metrics with 95% intervals, the parent of a fine-tune, and its known limits. Training
 * writes it with the directory; `svhn evaluate` on the test split writes it again with the
 * test figures. Plain text from metadata.json and the evaluation's report.json: nothing here
 * runs the model.
 */
import { wilsonInterval } from '../metrics/intervals.js';
import { MODEL_CARD_FILE, type ModelMetadata } from './modelDir.js';
import { INPUT_PREPROCESSING } from './summary.js';

export const MODEL_CARD_MD = MODEL_CARD_FILE;

/** The test split's figures, from <dir>/evaluation/report.json. */
export interface CardTestMetrics {
  accuracy: number;
  loss: number;
  count: number;
  synthetic: boolean;
}

type CardMetadata = ModelMetadata & { madeBy?: string; data?: { train: number; val: number; extra: number }; classifier?: { name: string; architecture: string; synthetic: boolean } };

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function withInterval(acc: number, n: number | undefined): string {
  if (!n) return pct(acc);
  const ci = wilsonInterval(Math.round(acc * n), n);
  return `${pct(acc)} (95% Wilson interval ${pct(ci.low)} to ${pct(ci.high)}, ${n.toLocaleString('en-US')} ${n === 1 ? 'example' : 'examples'})`;
}

/** The card's markdown for a model's metadata, and its test figures when it has been evaluated. */
export function renderModelCard(m: CardMetadata, test: CardTestMetrics | null = null): string {
  const reader = m.task === 'read';
  const synthetic = Boolean(m.synthetic);
  const lines: string[] = [];
  lines.push(`# Model card: ${m.name}`, '');
  if (synthetic) {
    lines.push(
      '> **Trained on SYNTHETIC data**: the offline sample that svhn draws in real typefaces, not SVHN.',
      '> Its accuracy on that sample says nothing about accuracy on SVHN or on your photos: measure',
      '> it on real data (`npm run bench:real`, `npm run bench:read`, `svhn evaluate --images DIR`).',
      '',
    );
  }
  lines.push('## What it is for', '');
  if (reader) {
    lines.push(
      `A reader of whole house numbers (\`${m.architecture}\`): it finds each digit's box in a photo and names the digit, for`,
      'address recognition from street-level photos and camera frames (`svhn read`, `svhn serve`).',
      '',
      '**Not for:** text other than house numbers, numbers in several lines or far from upright, numbers',
      'that fill only a small corner of a large frame (the photo is reduced to 48x96 first), identifying',
      'people or places, or any decision about a person.',
    );
  } else {
    lines.push(
      `A digit classifier (\`${m.architecture}\`) for 32x32 RGB crops, each centred on one house-number digit as SVHN`,
      'cuts them (`svhn predict`, `svhn evaluate`, `svhn serve`).',
      '',
      '**Not for:** whole photos (use a reader: `svhn train --model reader`), handwriting, text other than',
      'digits, or crops with no digit: it always names one of 0-9 unless `--min-confidence` lets it abstain.',
    );
  }
  lines.push('', '## Input', '');
  lines.push(
    reader
      ? '- A photo of any size, letterboxed into 48x96 RGB (scaled by one factor to fit, centred on grey 114), NHWC, float32 pixels scaled to [0, 1]; each box found is cut from the original photo as a square and read by the digit model in `classifier/`.'
      : `- ${INPUT_PREPROCESSING}.`,
  );
  lines.push('', '## Data', '');
  const d = m.data;
  lines.push(`- ${synthetic ? 'SYNTHETIC (the offline sample)' : 'Not the offline sample (real SVHN or your own labelled data)'}; dataset manifest sha256 \`${m.dataManifestSha256}\`.`);
  if (d) lines.push(`- ${d.train.toLocaleString('en-US')} training, ${d.val.toLocaleString('en-US')} validation${d.extra ? `, ${d.extra.toLocaleString('en-US')} extra` : ''} ${reader ? 'photos' : 'images'}.`);
  if (m.parent) {
    lines.push(`- Fine-tuned from \`${m.parent.name}\` (${m.parent.architecture}${m.parent.synthetic ? ', trained on the SYNTHETIC sample' : ''}; weights sha256 \`${m.parent.weightsSha256.slice(0, 16)}\`).`);
  }
  if (reader && m.classifier) {
    lines.push(`- Digits named by \`${m.classifier.name}\` (${m.classifier.architecture}${m.classifier.synthetic ? ', trained on the SYNTHETIC sample' : ''}), copied into \`classifier/\`.`);
  }
  lines.push('', '## Metrics', '');
  const what = reader ? 'photos whose digits were all found, one detection each (before any digit is named)' : 'top-1 accuracy';
  lines.push(`- Validation (${what}): ${withInterval(m.validation.acc, d?.val)}, loss ${m.validation.loss.toFixed(4)}; best epoch ${m.bestEpoch} of ${m.epochsRun}.`);
  if (test) {
    lines.push(`- Test split${test.synthetic ? ' (SYNTHETIC)' : ''}: ${withInterval(test.accuracy, test.count)}, loss ${test.loss.toFixed(4)} (\`svhn evaluate\`).`);
  } else if (!reader) {
    lines.push('- Test split: not evaluated yet (`svhn evaluate --model DIR` adds it here).');
  }
  lines.push('', '## Known limits', '');
  if (synthetic) lines.push('- Learned from drawn digits only: real photos differ in blur, light, wear and layout; expect lower accuracy on them.');
  lines.push(
    '- Its confidence is the softmax probability' + (reader ? ' (a number\'s: the product of its digits\')' : '') + ': high values are often wrong on inputs unlike its training data.',
    '- SVHN is for non-commercial use only; a model trained on it inherits that.',
  );
  lines.push(
    '',
    '## How it was made',
    '',
    `- \`svhn ${m.madeBy ?? 'train'}\`, ${m.versions?.svhn ? `svhn ${m.versions.svhn}, ` : ''}seed ${m.seed}, backend ${m.backend} (${m.threads} thread${m.threads === 1 ? '' : 's'}), ${m.params.total.toLocaleString('en-US')} parameters; ${m.createdAt}.`,
    `- Recipe: ${m.hyperparameters.epochs} epochs, batch ${m.hyperparameters.batchSize}, lr ${m.hyperparameters.lr}${m.hyperparameters.schedule ? `, ${m.hyperparameters.schedule} schedule` : ''}; every setting in \`metadata.json\`.`,
    '',
  );
  return lines.join('\n');
}
