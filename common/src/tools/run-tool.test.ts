import { open, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../errors.js';
import { INHERITED_FD_PATH, runTool } from './run-tool.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-tool-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(StorageError);
  return e as StorageError;
}

describe('runTool', () => {
  it('returns stdout and runs with LANG=C', async () => {
    const r = await runTool('sh', ['-c', 'printf "%s" "$LANG"']);
    expect(r.stdout).toBe('C');
  });

  it('hands an open descriptor to the tool as its fd 3', async () => {
    const file = join(dir, 'data');
    await writeFile(file, 'through the descriptor');
    const fh = await open(file, 'r');
    try {
      const r = await runTool('cat', [INHERITED_FD_PATH], { fd: fh.fd });
      expect(r.stdout).toBe('through the descriptor');
    } finally {
      await fh.close();
    }
  });

  it('reports a non-zero exit with the tool stderr, in one line', async () => {
    const e = await failure(
      runTool('sh', ['-c', 'echo "bad thing\nhappened" >&2; exit 3'], { what: 'step x' }),
    );
    expect(e.reason).toBe('TOOL_FAILED');
    expect(e.message).toBe('step x: sh failed: bad thing happened');
  });

  it('names a missing tool', async () => {
    const e = await failure(runTool('no-such-tool-one-storage', []));
    expect(e.message).toMatch(/no-such-tool-one-storage is not installed/);
  });

  it('kills a tool that outlives its timeout', async () => {
    const e = await failure(runTool('sleep', ['30'], { timeoutMs: 50 }));
    expect(e.message).toMatch(/sleep timed out after 50 ms/);
  });

  it('kills a tool when its caller is cancelled', async () => {
    const ac = new AbortController();
    const p = runTool('sleep', ['30'], { signal: ac.signal });
    ac.abort();
    const e = await failure(p);
    expect(e.message).toMatch(/sleep was cancelled/);
  });

  it('maps "No space left on device" to NO_SPACE', async () => {
    const e = await failure(
      runTool('sh', ['-c', 'echo "write /srv/x/.tmp-1: No space left on device" >&2; exit 1'], {
        what: 'copy a',
      }),
    );
    expect(e.reason).toBe('NO_SPACE');
    // The tool's words name the host's real paths: the line says only why.
    expect(e.message).toBe('copy a: sh: no space left on the destination filesystem');
  });
});
