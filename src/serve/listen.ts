/**
 * Listening on --host and --port: the URL to print, the bound addresses that reach past this
 * machine (the caller warns), and listen's errors (a port in use, a host that is not this
 * machine's or does not resolve) as one-line SvhnErrors naming the flag.
 */
import type { FastifyInstance } from 'fastify';
import { isIPv4, type AddressInfo } from 'node:net';
import { SvhnError } from '../errors.js';

export interface Listening {
  url: string;
  /** Bound addresses other than loopback (0.0.0.0, ::, an interface's): the network can reach these. */
  exposed: string[];
}

/** host:port as a URL ([::1] for IPv6). */
function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}/`;
}

/** 127.0.0.0/8, ::1, and 127.x mapped into IPv6. */
export function isLoopback(address: string): boolean {
  const v4 = address.replace(/^::ffff:/i, '');
  return address === '::1' || (isIPv4(v4) && v4.startsWith('127.'));
}

/** listen's error as the flag at fault: --port for a port taken or privileged, --host for an address. */
export function listenError(e: unknown, host: string, port: number): SvhnError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const flagError = (message: string, suggestion?: string) => new SvhnError('BAD_FLAG', message, { suggestion, cause: e });
  switch (code) {
    case 'EADDRINUSE':
      return flagError(`--port ${port}: already in use on ${host}`, 'stop the other server, or pick another --port (0: any free port)');
    case 'EACCES':
      return flagError(`--port ${port}: permission denied on ${host}`, 'ports below 1024 need privileges: pick --port 1024 or above');
    case 'EADDRNOTAVAIL':
      return flagError(`--host ${host}: not an address of this machine`, 'use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)');
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
      return flagError(`--host ${host}: no such host`, 'give an address of this machine, such as 127.0.0.1 or localhost');
    case 'EAI_AGAIN':
      return flagError(`--host ${host}: cannot resolve it now (EAI_AGAIN)`, 'give an IP address instead of a name, such as 127.0.0.1');
    case 'EAFNOSUPPORT':
      return flagError(`--host ${host}: this machine has no such address family (IPv6 off?)`, 'use 127.0.0.1');
  }
  const message = e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e);
  return flagError(`--host ${host} --port ${port}: cannot listen: ${message}`);
}

export async function listenOn(app: FastifyInstance, host: string, port: number): Promise<Listening> {
  try {
    await app.listen({ host, port });
  } catch (e) {
    throw listenError(e, host, port);
  }
  return {
    url: urlOf(app.server.address() as AddressInfo),
    exposed: app.addresses().map((a) => (typeof a === 'string' ? a : a.address)).filter((a) => !isLoopback(a)),
  };
}
