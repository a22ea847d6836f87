import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { actionData } from './support/ds-action-data.js';
import { dsAction, expectFailure, expectSuccess } from './support/ds-image-stack.js';
import { layout } from './support/files.js';

// Where an image datastore with a BRIDGE_LIST keeps its images: among the listed hosts whose agents
// answer, the one at image id % count; never the front-end. Each host has its own directory here,
// so where a file landed shows which host was chosen.
const DS = 2;
const BASE = `/var/lib/one/datastores/${DS}`;
const HOSTS = ['host01', 'host02'] as const;
let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', ...HOSTS] });
});

afterAll(async () => {
  await stack?.stop();
});

const mkfsData = (id: number, bridges: string): string =>
  actionData({
    image: { id, format: 'raw', size: 1 },
    datastore: { id: DS, template: { BRIDGE_LIST: bridges } },
  });

/** Which hosts hold `onedPath`. */
function holders(onedPath: string): string[] {
  return ['frontend', ...HOSTS].filter((h) => existsSync(stack.localPath(h, onedPath)));
}

async function mkfsOn(id: number, bridges: string): Promise<string[]> {
  const source = expectSuccess(await dsAction(stack, 'mkfs', id, mkfsData(id, bridges))).trimEnd();
  return holders(source);
}

describe('BRIDGE_LIST', () => {
  it('picks the listed host at image id % count', async () => {
    expect(await mkfsOn(40, 'host01 host02')).toEqual(['host01']);
    expect(await mkfsOn(41, 'host01 host02')).toEqual(['host02']);
    expect(await mkfsOn(43, ' host02\thost01 ')).toEqual(['host01']);
  });

  it('passes over a host whose agent is down and uses the others', async () => {
    await stack.stopAgent('host01');
    try {
      expect(await mkfsOn(44, 'host01 host02')).toEqual(['host02']);
      expect(await mkfsOn(45, 'host01 host02')).toEqual(['host02']);
    } finally {
      await stack.startAgent('host01');
    }
    // Back at once: the coordinator's channel may still be waiting out its reconnect backoff,
    // and the host is healthy all the same.
    expect(await mkfsOn(42, 'host01 host02')).toEqual(['host01']);
  });

  it('fails with NO_HEALTHY_BRIDGE, naming each host and why, when none answers: never the front-end', async () => {
    const before = holders(BASE).map((h) => [h, layout(stack.localPath(h, BASE))]);
    await Promise.all(HOSTS.map((h) => stack.stopAgent(h)));
    try {
      const r = await dsAction(stack, 'mkfs', 46, mkfsData(46, 'host01 host02'));
      const line = expectFailure(
        r,
        /^mkfs failed: image 46: no host of BRIDGE_LIST of datastore 2 answers: host01 \(.+\); host02 \(.+\)$/,
      );
      expect(line).toMatch(/unreachable/);
      expect(r.stderr).toMatch(/^ERROR: mkfs: NO_HEALTHY_BRIDGE /m);
    } finally {
      await Promise.all(HOSTS.map((h) => stack.startAgent(h)));
    }
    expect(holders(BASE).map((h) => [h, layout(stack.localPath(h, BASE))])).toEqual(before);
    expect(existsSync(stack.localPath('frontend', BASE))).toBe(false);
  });

  it('fails with UNKNOWN_HOST for a listed host the coordinator has no agent for', async () => {
    const r = await dsAction(stack, 'mkfs', 47, mkfsData(47, 'host01 host09'));
    expectFailure(r, /^mkfs failed: image 47: BRIDGE_LIST of datastore 2 names unknown host "host09"/);
    expect(r.stderr).toMatch(/^ERROR: mkfs: UNKNOWN_HOST /m);
  });

  it('deletes the image on the bridge it lives on', async () => {
    const source = expectSuccess(await dsAction(stack, 'mkfs', 48, mkfsData(48, 'host01 host02'))).trimEnd();
    expect(holders(source)).toEqual(['host01']);
    const r = await dsAction(
      stack,
      'rm',
      48,
      actionData({
        image: { id: 48, source },
        datastore: { id: DS, template: { BRIDGE_LIST: 'host01 host02' } },
      }),
    );
    expectSuccess(r);
    expect(holders(source)).toEqual([]);
  });

  it('works without a BRIDGE_LIST on the front-end', async () => {
    expect(await mkfsOn(49, '')).toEqual(['frontend']);
  });
});
