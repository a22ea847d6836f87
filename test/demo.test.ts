// `one-storage demo` as a newcomer runs it, and `demo --stay` as another client would drive it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { distEntry } from '../cli/src/demo/processes.js';
import { runAction } from '../cli/src/demo/run-action.js';

const cli = (): string => distEntry('cli/src/main.js');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('one-storage demo', () => {
  it('runs the guide VM lifecycle through the shims and passes its checks', async () => {
    const child = spawn(process.execPath, [cli(), 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(out).toContain('demo: all checks passed');
    for (const stage of ['CREATE', 'STOP', 'RESUME', 'MIGRATE', 'SHUTDOWN'])
      expect(out).toContain(`[${stage}]`);
    expect(out).toMatch(/\[SHUTDOWN\] mvds .* → exit 0/);
    expect(out).not.toContain('FAIL');
    expect(code, out).toBe(0);
  });

  it('--stay leaves a stack any client can drive, and SIGTERM stops everything it started', async () => {
    const child = spawn(process.execPath, [cli(), 'demo', '--stay'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout });
    const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('{')) resolve(JSON.parse(line) as Record<string, unknown>);
      });
      child.once('exit', (code) => reject(new Error(`demo --stay exited early with ${code}`)));
    });
    const pids = Object.values(info['pids'] as Record<string, number>);
    try {
      expect(existsSync(info['socket'] as string)).toBe(true);
      expect(existsSync(`${info['remotes'] as string}/tm/grpc/clone`)).toBe(true);
      expect(Object.keys(info['datastores'] as object).sort()).toEqual(['frontend', 'host01', 'host02']);
      expect(existsSync(`${info['fixtures'] as string}/vm/42.xml`)).toBe(true);
      expect(pids.length).toBe(4);
      const r = await runAction(info['remotes'] as string, 'tm', 'grpc', 'delete', [
        'host01:/var/lib/one/datastores/0/4242',
        '4242',
        '0',
      ]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(info['socket'] as string)).toBe(false);
  });
});
