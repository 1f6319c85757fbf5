import type { Command } from 'commander';

/** Placeholder: `svhn report` is being built. */
export function registerReport(program: Command): void {
  program.command('report').description('(report: not built yet)').action(() => {
    throw new Error('svhn report is not built yet');
  });
}
