// `one-storage demo` as a newcomer runs it, and `demo --stay` as another client would drive it.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
    // The images were registered through the datastore shims before the VM ran.
    expect(out).toMatch(
      /\[REGISTER\] stat http:\/\/127\.0\.0\.1:\d+\/alpine\.qcow2 → exit 0 \(\d+ ms\): 64\n/,
    );
    expect(out).toMatch(
      /\[REGISTER\] cp 0 \(PATH=http:\/\/127\.0\.0\.1:\d+\/alpine\.qcow2\) → exit 0 .*: \/var\/lib\/one\/datastores\/1\/[0-9a-f]{32} qcow2\n/,
    );
    expect(out).toMatch(
      /\[REGISTER\] cp 1 \(PATH=http:\/\/127\.0\.0\.1:\d+\/data\.raw\) → exit 0 .*: \/var\/lib\/one\/datastores\/1\/[0-9a-f]{32} raw\n/,
    );
    expect(out.indexOf('[REGISTER] cp 1')).toBeLessThan(out.indexOf('[CREATE]'));
    expect(out).toContain('ok   image 0 is at the SOURCE cp printed, in the FORMAT it printed (qcow2)');
    expect(out).toContain('ok   image 1 is at the SOURCE cp printed, in the FORMAT it printed (raw)');
    for (const stage of ['CREATE', 'STOP', 'RESUME', 'MIGRATE', 'SHUTDOWN'])
      expect(out).toContain(`[${stage}]`);
    expect(out).toMatch(/\[SHUTDOWN\] mvds .* → exit 0/);
    expect(out).not.toContain('FAIL');
    expect(code, out).toBe(0);
  });

  it('--stay leaves a stack any client can drive, and SIGTERM stops everything it started', async () => {
    const child = spawn(process.execPath, [cli(), 'demo', '--stay'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout });
    const registered = new Map<number, { source: string; format: string; sizeMb: number }>();
    const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
      lines.on('line', (line) => {
        const r = /^registered image (\d+) \(\w+\): SOURCE=(\S+) FORMAT=(\S+) SIZE=(\d+)$/.exec(line);
        if (r) registered.set(Number(r[1]), { source: r[2] ?? '', format: r[3] ?? '', sizeMb: Number(r[4]) });
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
      // cp's answer: the image is on the front-end at the SOURCE printed, in the FORMAT printed,
      // and the fake oned knows it by that SOURCE and FORMAT, as oned stores them.
      expect([...registered.keys()].sort()).toEqual([0, 1]);
      const frontendDs = (info['datastores'] as Record<string, string>)['frontend'] ?? '';
      for (const [id, { source, format, sizeMb }] of registered) {
        expect(source).toMatch(/^\/var\/lib\/one\/datastores\/1\/[0-9a-f]{32}$/);
        expect(format).toBe(id === 0 ? 'qcow2' : 'raw');
        expect(sizeMb).toBe(64);
        const file = join(frontendDs, source.slice('/var/lib/one/datastores/'.length));
        const stored = JSON.parse(
          execFileSync('qemu-img', ['info', '--output=json', '-f', format, file], { encoding: 'utf8' }),
        ) as { format: string; 'virtual-size': number };
        expect(stored).toMatchObject({ format, 'virtual-size': 64 * 1024 * 1024 });
        expect(readFileSync(file).subarray(0, 4).equals(Buffer.from('QFI\xfb', 'latin1'))).toBe(
          format === 'qcow2',
        );
        const imageXml = readFileSync(`${info['fixtures'] as string}/image/${id}.xml`, 'utf8');
        expect(imageXml).toContain(`<SOURCE>${source}</SOURCE>`);
        expect(imageXml).toContain(`<FORMAT>${format}</FORMAT>`);
      }
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
