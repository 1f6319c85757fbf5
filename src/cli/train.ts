import type { Command } from 'commander';

/** Placeholder: `svhn train` is being built. */
export function registerTrain(program: Command): void {
  program.command('train').description('(train: not built yet)').action(() => {
    throw new Error('svhn train is not built yet');
  });
}
