// The export listener's lifecycle with a real https server on loopback: the URL base it puts in
// URLs, the temporaries it holds from the stale-temporary sweeps, and what closing it ends.
import { existsSync, writeFileSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTls } from '../../../common/src/tls.js';
import { pkiFiles } from '../../../common/src/pki/pki.js';
import { sweepDirectory } from '../transfer/stale-temps.js';
import { AGENT_NAME, makePki, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import { curlRequest } from '../../../test/support/agent/export-fixture.js';
import { ExportService } from './export-service.js';

let base = '';
let tls: ReturnType<typeof loadTls>;

beforeAll(async () => {
  base = await makeTempDir('export-service-');
  tls = loadTls(pkiFiles((await makePki(base)).dir, AGENT_NAME), 'test');
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function service(
  config: { listen: string; advertise?: string },
  activeTemps = new Set<string>(),
): ExportService {
  return new ExportService({
    name: AGENT_NAME,
    tls,
    config: { ttlSeconds: 3600, ...config },
    logger: pino({ level: 'silent' }),
    activeTemps,
  });
}

describe('ExportService', () => {
  it('puts the listen address, the agent name for a wildcard, or export.advertise in its URLs', async () => {
    const cases: Array<[{ listen: string; advertise?: string }, RegExp]> = [
      [{ listen: '127.0.0.1:0' }, /^https:\/\/127\.0\.0\.1:\d+$/],
      [{ listen: '0.0.0.0:0' }, /^https:\/\/host01:\d+$/],
      [
        { listen: '127.0.0.1:0', advertise: 'https://proxy.example.org/h1' },
        /^https:\/\/proxy\.example\.org\/h1$/,
      ],
    ];
    for (const [config, expected] of cases) {
      const s = service(config);
      await s.start();
      try {
        expect(s.urlBase()).toMatch(expected);
        expect(s.address()).toMatch(/:\d+$/);
        expect(s.address()).not.toMatch(/:0$/);
      } finally {
        await s.close();
      }
    }
  });

  it('keeps a held temporary from the sweeps, removes it on release, and ends every export on close', async () => {
    const dir = await makeTempDir('export-temps-');
    const active = new Set<string>();
    const s = service({ listen: '127.0.0.1:0' }, active);
    await s.start();
    try {
      const entry = join(dir, 'abc');
      const kept = s.holdTemp(entry);
      const released = s.holdTemp(entry);
      expect(kept.path).toMatch(/\/\.abc\.tmp-host01-[0-9a-f]{12}$/);
      for (const t of [kept, released]) writeFileSync(t.path, 'copy');
      // A receive into `abc` sweeps this agent's temporaries for that name that no one holds.
      expect(await sweepDirectory(dir, { agent: AGENT_NAME, active }, 'abc')).toEqual([]);
      await released.release();
      expect(existsSync(released.path)).toBe(false);
      expect(active.size).toBe(1);

      const st = await stat(kept.path, { bigint: true });
      const { url } = s.publish(
        {
          path: kept.path,
          identity: { dev: st.dev, ino: st.ino },
          size: 4,
          mtimeNs: st.mtimeNs,
          md5: '0'.repeat(32),
          source: '/var/lib/one/datastores/1/abc',
          name: 'image.qcow2',
          dispose: kept.release,
        },
        60,
      );
      expect((await curlRequest(url)).body.toString()).toBe('copy');
      await s.close();
      expect(existsSync(kept.path)).toBe(false);
      expect(active.size).toBe(0);
    } finally {
      await s.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
