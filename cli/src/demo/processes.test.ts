// freePorts: distinct loopback ports, all released once chosen. Real listeners on 127.0.0.1.
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, freePorts } from './processes.js';

/** Binds `port` on loopback and releases it: resolves true when the port was free. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

describe('freePorts', () => {
  it.each([0, 1, 2, 16])('gives %i distinct loopback ports, every one released again', async (n) => {
    const ports = await freePorts(n);
    expect(ports).toHaveLength(n);
    expect(new Set(ports).size).toBe(n);
    for (const port of ports) {
      expect(port).toBeGreaterThan(0);
      expect(await canBind(port)).toBe(true);
    }
  });

  it('never gives a port something is listening on', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const addr = busy.address();
    const taken = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      expect(await freePorts(16)).not.toContain(taken);
      expect(await freePort()).not.toBe(taken);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('refuses a count that is not a whole number', async () => {
    await expect(freePorts(-1)).rejects.toThrow(/n must be a whole number/);
    await expect(freePorts(1.5)).rejects.toThrow(/n must be a whole number/);
  });
});
