// One source for every action name: what `shims install` writes, what the coordinator dispatches and
// what the README lists must be the same set.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_SIDE_TM_ACTIONS } from '../common/src/drivers/driver-actions.js';
import {
  driverEntries,
  driverEntry,
  NOT_IMPLEMENTED,
  ON_THE_HOST,
} from '../coordinator/src/actions/dispatch.js';
import { supportedActionsTable } from '../coordinator/src/actions/supported-actions-table.js';
import { installShims, RUNTIME_FILE } from '../shims/src/install.js';

let dir: string;
/** `kind/driver/action` of every shim installShims wrote. */
let installed: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'driver-actions-'));
  const runtimeDir = join(dir, 'runtime');
  await mkdir(runtimeDir);
  await writeFile(join(runtimeDir, RUNTIME_FILE), '');
  const remotesDir = join(dir, 'remotes');
  const { files } = await installShims({
    remotesDir,
    socketPath: '/run/x.sock',
    nodePath: '/usr/bin/node',
    runtimeDir,
  });
  installed = files
    .map((f) => relative(remotesDir, f).split(sep).join('/'))
    .filter((f) => f.startsWith('tm/') || f.startsWith('datastore/'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('driver actions', () => {
  it('every installed shim has a handler or an explicit entry saying why not', () => {
    expect(installed.length).toBeGreaterThan(100);
    const missing = installed.filter((name) => {
      const [kind, driver, action] = name.split('/') as [string, string, string];
      return driverEntry(kind, driver, action) === undefined;
    });
    expect(missing).toEqual([]);
  });

  it('every entry of the dispatch tables is installed, host-side ones as host-side shims', () => {
    const names = new Set(installed);
    for (const { kind, driver, action, entry } of driverEntries()) {
      expect(names, `${kind}/${driver}/${action}`).toContain(`${kind}/${driver}/${action}`);
      expect(entry === ON_THE_HOST, `${kind}/${driver}/${action}`).toBe(
        kind === 'tm' && HOST_SIDE_TM_ACTIONS.includes(action),
      );
    }
    expect(driverEntries().length).toBe(installed.length);
  });

  it('not-implemented entries are explicit, and every handler declares its arguments', () => {
    for (const { entry } of driverEntries()) {
      if (typeof entry === 'function') {
        expect(entry.signature.args.length).toBeGreaterThan(0);
        expect(entry.does).not.toBe('');
      } else {
        expect([NOT_IMPLEMENTED, ON_THE_HOST]).toContain(entry);
      }
    }
  });

  it("the README's table of actions is the one the declarations make", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const begin = '<!-- supported-actions:begin -->\n';
    const end = '\n<!-- supported-actions:end -->';
    const table = readme.slice(readme.indexOf(begin) + begin.length, readme.indexOf(end));
    // To regenerate after a change: npm run build, then
    // node -e "import('./dist/coordinator/src/actions/supported-actions-table.js').then((m) => console.log(m.supportedActionsTable()))"
    expect(readme).toContain(begin);
    expect(table).toBe(supportedActionsTable());
  });
});
