import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { waitFor } from './command.js';
import type { Container } from './container.js';
import { FLEET_ONED_SESSION } from './opennebula-standin.js';

/** Where the playbook's default coordinator config expects oned (one_storage_oned_endpoint). */
export const FAKE_ONED_PORT = 2634;
/** The fake oned's fixture files on the front-end (written by the test through the node's root). */
export const FAKE_ONED_FIXTURES = '/var/lib/one-fleet/oned';
/** The images the lifecycle registers, served over HTTP on the front-end's loopback. */
export const IMAGES_DIR = '/var/tmp/fleet-images';
export const IMAGES_PORT = 8088;
const SCRIPT = '/usr/local/lib/one-fleet/fleet-fake-oned.mjs';
const START_TIMEOUT_MS = 30_000;

/**
 * Starts on the front-end, as transient systemd services, the fake oned (from the installed
 * package, /opt/one-storage/current) on 127.0.0.1:2634, and a static HTTP server for the images to
 * register (python3's, on 127.0.0.1:8088); waits until both listen.
 */
export async function startFrontendServices(frontend: Container): Promise<void> {
  await mkdir(frontend.path('/usr/local/lib/one-fleet'), { recursive: true });
  // A test file, not shipped: copied (a few hundred bytes of text) into the node.
  const script = await readFile(fileURLToPath(new URL('./fleet-fake-oned.mjs', import.meta.url)));
  await writeFile(frontend.path(SCRIPT), script);
  await mkdir(frontend.path(FAKE_ONED_FIXTURES), { recursive: true });
  await mkdir(frontend.path(IMAGES_DIR), { recursive: true });
  await frontend.exec([
    'systemd-run',
    '--unit=fleet-fake-oned',
    '--property=Restart=no',
    'node',
    SCRIPT,
    '/opt/one-storage/current',
    FAKE_ONED_FIXTURES,
    `127.0.0.1:${FAKE_ONED_PORT}`,
    FLEET_ONED_SESSION,
  ]);
  await frontend.exec([
    'systemd-run',
    '--unit=fleet-images',
    'python3',
    '-m',
    'http.server',
    '--bind',
    '127.0.0.1',
    '--directory',
    IMAGES_DIR,
    String(IMAGES_PORT),
  ]);
  for (const [unit, port] of [
    ['fleet-fake-oned', FAKE_ONED_PORT],
    ['fleet-images', IMAGES_PORT],
  ] as const) {
    await waitFor(
      `${unit} listening on 127.0.0.1:${port} on the front-end`,
      async () => {
        const active = await frontend.exec(['systemctl', 'is-active', unit], { allowFailure: true });
        if (active.stdout.trim() === 'failed') {
          const log = await frontend.exec(['journalctl', '-u', unit, '--no-pager', '-n', '20']);
          throw new Error(`${unit} failed:\n${log.stdout}`);
        }
        const ss = await frontend.exec(['ss', '-Hltn', 'sport', '=', `:${port}`]);
        return ss.stdout.trim() ? true : undefined;
      },
      START_TIMEOUT_MS,
    );
  }
}
