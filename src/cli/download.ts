import type { Command } from 'commander';

/** Placeholder: `svhn download` is being built. */
export function registerDownload(program: Command): void {
  program.command('download').description('(download: not built yet)').action(() => {
    throw new Error('svhn download is not built yet');
  });
}
