// An image URL may carry a user and password (`http://user:secret@mirror/disk.qcow2`). Through the
// shims against real agents: oned's error line, the INFO lines, the coordinator's and the agents'
// logs and the journal show the URL without them (docs/security.md#the-journal-and-the-logs),
// whether the download fails, is retried, or succeeds.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../../cli/src/demo/stack.js';
import { MIB } from '../../common/src/units.js';
import { actionData, statImage } from '../support/ds-action-data.js';
import { dsAction, expectFailure, expectSuccess, infoLines } from '../support/ds-image-stack.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';

const PASSWORD = 'secret';
const BRIDGED_DS = 2; // BRIDGE_LIST host01: the download happens on host01's agent
let stack: Stack;
let images: ImageServer;

beforeAll(async () => {
  images = await startImageServer();
  stack = await Stack.start({ hosts: ['frontend', 'host01'] });
});

afterAll(async () => {
  await stack?.stop();
  await images?.close();
});

/** `http://user:secret@127.0.0.1:PORT<path>`, and the same URL as it may be shown. */
function withUserinfo(path: string): { url: string; shown: string } {
  const url = new URL(images.url(path));
  url.username = 'user';
  url.password = PASSWORD;
  return { url: url.href, shown: images.url(path) };
}

/** Every file the stack wrote that an operator reads: the logs and the journal (with its WAL). */
function writtenText(): string {
  const logs = join(stack.baseDir, 'logs');
  const files = [
    ...readdirSync(logs).map((f) => join(logs, f)),
    ...readdirSync(stack.baseDir)
      .filter((f) => f.startsWith('journal.db'))
      .map((f) => join(stack.baseDir, f)),
  ];
  return files.map((f) => readFileSync(f).toString('latin1')).join('\n');
}

describe('a user and password in an image URL', () => {
  it.each([1, BRIDGED_DS])(
    'cp of a URL that 404s (datastore %i): the error line names the URL without them',
    async (ds) => {
      const { url, shown } = withUserinfo('/missing.qcow2');
      const stdin = actionData({
        image: { id: 60 + ds, path: url, format: null },
        datastore: { id: ds, template: ds === BRIDGED_DS ? { BRIDGE_LIST: 'host01' } : {} },
      });
      const r = await dsAction(stack, 'cp', 60 + ds, stdin);
      const line = expectFailure(r, /^cp failed: /);
      expect(line).toContain(shown);
      expect(r.stderr).toMatch(/^ERROR: cp: NOT_FOUND /m);
      expect(infoLines(r)).toContain(`Downloading image ${shown} to the image repository`);
      expect(r.stderr + r.stdout).not.toContain(PASSWORD);
      // The server was asked with the credentials: they were used, only never shown.
      expect(images.requests('/missing.qcow2').length).toBeGreaterThan(0);
    },
  );

  it('stat of a URL that 404s fails naming the URL without them', async () => {
    const { url, shown } = withUserinfo('/missing.raw');
    const r = await dsAction(stack, 'stat', 0, actionData({ image: statImage(url) }));
    expect(expectFailure(r, /^stat failed: /)).toContain(shown);
    expect(r.stderr).not.toContain(PASSWORD);
  });

  it('cp of a URL answered 503 once, then served: retried and registered, the logs show no password', async () => {
    const { url } = withUserinfo('/flaky.raw');
    images.serve('/flaky.raw', Buffer.alloc(MIB, 0x5a), { failFirst: 1 });
    const r = await dsAction(
      stack,
      'cp',
      70,
      actionData({
        image: { id: 70, path: url, format: null },
        datastore: { id: BRIDGED_DS, template: { BRIDGE_LIST: 'host01' } },
      }),
    );
    expect(expectSuccess(r)).toMatch(/^\/var\/lib\/one\/datastores\/2\/[0-9a-f]{32} raw\n$/);
    expect(r.stderr).not.toContain(PASSWORD);
    expect(images.requests('/flaky.raw').map((q) => q.status)).toEqual([503, 200]);
  });

  it('no log line and nothing in the journal holds the password; the URLs are there without it', () => {
    const text = writtenText();
    expect(text).toContain(images.url('/missing.qcow2'));
    expect(text).toContain(images.url('/flaky.raw'));
    expect(text).not.toContain(PASSWORD);
  });
});
