/**
 * Listening: which bound addresses are this machine only (loopback), and listen's errors as
 * one line naming --port or --host. The CLI tests (api.test.ts) check a real port in use,
 * an address not of this machine and the warning; these cover the errors a test cannot
 * cause without the network (a name that does not resolve).
 */
import { describe, expect, it } from 'vitest';
import { isLoopback, listenError } from '../../src/serve/listen.js';

const errno = (code: string, message = `listen ${code}`) => Object.assign(new Error(message), { code });

describe('serve: listen', () => {
  it('tells loopback addresses from the others', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).toBe(true);
    for (const a of ['0.0.0.0', '::', '192.168.1.5', '10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1']) expect(isLoopback(a), a).toBe(false);
  });

  it('names the flag and the problem in one line for each listen error', () => {
    const cases: Array<[string, RegExp]> = [
      ['EADDRINUSE', /^--port 8080: already in use on 127\.0\.0\.1; stop the other server, or pick another --port \(0: any free port\)$/],
      ['EACCES', /^--port 8080: permission denied on 127\.0\.0\.1; ports below 1024 need privileges: pick --port 1024 or above$/],
      ['EADDRNOTAVAIL', /^--host 127\.0\.0\.1: not an address of this machine; use 127\.0\.0\.1 \(this machine only\) or 0\.0\.0\.0 \(every interface\)$/],
      ['ENOTFOUND', /^--host 127\.0\.0\.1: no such host; /],
      ['EAI_AGAIN', /^--host 127\.0\.0\.1: cannot resolve it now \(EAI_AGAIN\); /],
      ['EAFNOSUPPORT', /^--host 127\.0\.0\.1: this machine has no such address family \(IPv6 off\?\); /],
      ['EWHATEVER', /^--host 127\.0\.0\.1 --port 8080: cannot listen: listen EWHATEVER$/],
    ];
    for (const [code, message] of cases) {
      const e = listenError(errno(code), '127.0.0.1', 8080);
      expect(e.code, code).toBe('BAD_FLAG');
      expect(e.exitCode, code).toBe(2);
      expect(`${e.message}${e.suggestion ? `; ${e.suggestion}` : ''}`, code).toMatch(message);
    }
  });
});
