/**
 * The refusals of `svhn serve`: an HttpError carries a status, a code a client can switch on
 * and one line naming the problem (and the flag that sets a limit). The README and the
 * OpenAPI document's Error schema promise the body { error, code } for every one of them.
 */

/** A refusal with its status and a code a client can switch on. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MIB = 1024 * 1024;

/** 1048576 -> "1 MiB", 512 -> "512 bytes" (limits as the flags set them). */
export const formatBytes = (n: number) => (n >= MIB ? `${+(n / MIB).toFixed(2)} MiB` : `${n} bytes`);
