import type { Command } from 'commander';

/** Placeholder: `svhn evaluate` is being built. */
export function registerEvaluate(program: Command): void {
  program.command('evaluate').description('(evaluate: not built yet)').action(() => {
    throw new Error('svhn evaluate is not built yet');
  });
}
