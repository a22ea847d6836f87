import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { MIB } from '../common/src/units.js';
import { actionData } from './support/ds-action-data.js';
import { downloadExport } from './support/ds-image-life.js';
import { dsAction, expectFailure, expectSuccess } from './support/ds-image-stack.js';

// export for a marketplace through the shim as one_market.rb runs it (app id as the argument,
// IMAGE and DATASTORE in base64 on stdin), against real agents: the front-end's agent has an export
// listener, host01's not.
const FE_DS = 1;
const BRIDGED_DS = 2; // BRIDGE_LIST host01
let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({
    hosts: ['frontend', 'host01'],
    agentSettings: (name) => (name === 'frontend' ? { export: { listen: '127.0.0.1:0' } } : {}),
  });
});

afterAll(async () => {
  await stack?.stop();
});

const template = (ds: number): Record<string, string> => (ds === BRIDGED_DS ? { BRIDGE_LIST: 'host01' } : {});

describe('export', () => {
  const exportData = (ds: number, source: string, format = 'qcow2'): string =>
    actionData({
      image: { id: 97, source, format, size: 10 },
      datastore: { id: ds, template: template(ds) },
    });

  it('prints IMPORT_INFO on one line: an https URL serving the image, its MD5, SIZE as oned gave it, the format', async () => {
    const source = `/var/lib/one/datastores/${FE_DS}/c0000000000000000000000000000001`;
    const local = stack.localPath('frontend', source);
    mkdirSync(dirname(local), { recursive: true });
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', local, '10M']);
    await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x42 0 ${MIB}`, local]);
    const out = expectSuccess(await dsAction(stack, 'export', 3, exportData(FE_DS, source)));
    expect(out).toMatch(
      /^<IMPORT_INFO><IMPORT_SOURCE><!\[CDATA\[https:\/\/[^\]]+\]\]><\/IMPORT_SOURCE><MD5><!\[CDATA\[[0-9a-f]{32}\]\]><\/MD5><SIZE><!\[CDATA\[10\]\]><\/SIZE><FORMAT><!\[CDATA\[qcow2\]\]><\/FORMAT><DISPOSE>NO<\/DISPOSE><\/IMPORT_INFO>\n$/,
    );
    // What one_market.rb does with it: parse the XML and read the fields.
    const info = (
      new XMLParser({ parseTagValue: false }).parse(out) as { IMPORT_INFO: Record<string, string> }
    ).IMPORT_INFO;
    expect(info['IMPORT_SOURCE']).toMatch(/\/image-97\.qcow2$/);
    const bytes = await downloadExport(stack, info['IMPORT_SOURCE'] as string);
    const md5 = createHash('md5').update(bytes).digest('hex');
    expect(md5).toBe(info['MD5']);
    expect(md5).toBe(createHash('md5').update(readFileSync(local)).digest('hex'));
  });

  it('fails on stderr with exit 1 (not on stdout) where the agent has no export listener', async () => {
    const source = `/var/lib/one/datastores/${BRIDGED_DS}/c0000000000000000000000000000002`;
    const local = stack.localPath('host01', source);
    mkdirSync(dirname(local), { recursive: true });
    writeFileSync(local, Buffer.alloc(MIB, 1));
    const r = await dsAction(stack, 'export', 3, exportData(BRIDGED_DS, source, 'raw'));
    expectFailure(r, /^export failed: /);
    expect(r.stderr).toMatch(/^ERROR: export: EXPORT_DISABLED /m);
  });

  it('picks the BRIDGE_LIST host by the app id, as fs does', async () => {
    const source = `/var/lib/one/datastores/${FE_DS}/c0000000000000000000000000000003`;
    const local = stack.localPath('frontend', source);
    mkdirSync(dirname(local), { recursive: true });
    writeFileSync(local, Buffer.alloc(MIB, 3));
    const stdin = (): string =>
      actionData({
        image: { id: 97, source, format: 'raw', size: 1 },
        datastore: { id: FE_DS, template: { BRIDGE_LIST: 'host01 frontend' } },
      });
    expect(expectSuccess(await dsAction(stack, 'export', 3, stdin()))).toMatch(/^<IMPORT_INFO>/);
    const even = await dsAction(stack, 'export', 4, stdin());
    expectFailure(even, /^export failed: /);
    expect(even.stderr).toMatch(/^ERROR: export: EXPORT_DISABLED /m);
  });

  it('fails in one line for a missing image', async () => {
    const r = await dsAction(
      stack,
      'export',
      3,
      exportData(FE_DS, `/var/lib/one/datastores/${FE_DS}/c00000000000000000000000000000ff`),
    );
    expectFailure(r, /^export failed: .*c00000000000000000000000000000ff/);
    expect(r.stderr).toMatch(/^ERROR: export: NOT_FOUND /m);
  });
});
