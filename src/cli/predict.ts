import type { Command } from 'commander';

/** Placeholder: `svhn predict` is being built. */
export function registerPredict(program: Command): void {
  program.command('predict').description('(predict: not built yet)').action(() => {
    throw new Error('svhn predict is not built yet');
  });
}
