import type { Command } from 'commander';

/** Placeholder: `svhn preprocess` is being built. */
export function registerPreprocess(program: Command): void {
  program.command('preprocess').description('(preprocess: not built yet)').action(() => {
    throw new Error('svhn preprocess is not built yet');
  });
}
