import type { Command } from 'commander';

/** Placeholder: `svhn demo` is being built. */
export function registerDemo(program: Command): void {
  program.command('demo').description('(demo: not built yet)').action(() => {
    throw new Error('svhn demo is not built yet');
  });
}
