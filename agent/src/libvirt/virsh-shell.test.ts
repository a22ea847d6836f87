import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { failure } from '../../../test/support/agent/qcow2-test-fixture.js';
import { parseBlockJobEvent, startEvents, stopEvents } from './virsh-events.js';
import { MAX_SHELLS, busyShellPids, closeShells } from './virsh-pool.js';
import { virsh } from './virsh.js';

/**
 * The long-lived virsh shell against virsh's own test driver (`test:///default`: a domain "test",
 * running, inside virsh itself, no libvirtd needed), compared with one-shot virsh processes.
 */
const URI = 'test:///default';
const REPO = join(import.meta.dirname, '..', '..', '..');
const run = promisify(execFile);
const opts = { uri: URI, what: 'shell test' };

async function oneShot(args: string[]): Promise<string> {
  return (await run('virsh', ['-c', URI, '-q', ...args], { env: { ...process.env, LANG: 'C', LC_ALL: 'C' } }))
    .stdout;
}

/** The virsh processes this test process started (the shells). */
function virshChildren(): number[] {
  const pids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  return pids.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'virsh';
    } catch {
      return false;
    }
  });
}

afterAll(() => closeShells());

describe('virsh in a long-lived shell', () => {
  it('prints byte for byte what a virsh process of its own prints', async () => {
    for (const args of [
      ['dumpxml', 'test'],
      ['list', '--all'],
      ['domstate', 'test'],
      ['domblklist', 'test'],
      ['echo', 'a'],
    ]) {
      expect(await virsh(args, opts)).toBe(await oneShot(args));
    }
  });

  it("passes every argument as it is: quotes, ';', '#', '$', spaces, empty, long", async () => {
    const args = ["it's", 'a;b', '#c', '$HOME', 'two words', '', '"dq"', 'back\\slash', 'x'.repeat(3000)];
    expect(await virsh(['echo', ...args], opts)).toBe(await oneShot(['echo', ...args]));
    expect(await virsh(['echo', ...args], opts)).toBe(args.join(' '));
  });

  it("gives libvirt's refusal its reason and words, and the shell goes on", async () => {
    const err = await failure(virsh(['domstate', 'no-such-domain'], opts));
    expect(err.reason).toBe('DOMAIN_NOT_FOUND');
    expect(err.message).toBe("shell test: virsh failed: error: failed to get domain 'no-such-domain'");
    const unknown = await failure(virsh(['no-such-command'], opts));
    expect(unknown.reason).toBe('TOOL_FAILED');
    expect(unknown.message).toMatch(/^shell test: virsh failed: error: unknown command: 'no-such-command'/);
    expect((await virsh(['domstate', 'test'], opts)).trim()).toBe('running');
  });

  it('refuses an argument with a line break before sending anything', async () => {
    const err = await failure(virsh(['domstate', 'test\nlist'], opts));
    expect(err.reason).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe('shell test: a virsh argument holds a line break');
  });

  it(`runs many commands, several at once, in at most ${MAX_SHELLS} processes`, async () => {
    for (let i = 0; i < 30; i++) expect(await virsh(['echo', String(i)], opts)).toBe(String(i));
    const outs = await Promise.all(Array.from({ length: 12 }, (_, i) => virsh(['echo', `n${i}`], opts)));
    expect(outs).toEqual(Array.from({ length: 12 }, (_, i) => `n${i}`));
    const shells = virshChildren();
    expect(shells.length).toBeGreaterThan(0);
    expect(shells.length).toBeLessThanOrEqual(MAX_SHELLS);
  });

  it('a command that does not answer in time fails, its shell is killed, the next command runs', async () => {
    // `event --loop` never returns by itself.
    const err = await failure(virsh(['event', '--all', '--loop'], { ...opts, timeoutMs: 300 }));
    expect(err.message).toBe('shell test: virsh timed out after 300 ms');
    expect((await virsh(['domstate', 'test'], opts)).trim()).toBe('running');
  });

  it('a cancelled command fails at once; a shell that dies fails its command; the next one runs', async () => {
    const ac = new AbortController();
    const pending = failure(virsh(['event', '--all', '--loop'], { ...opts, signal: ac.signal }));
    ac.abort();
    expect((await pending).message).toBe('shell test: virsh was cancelled');

    const blocked = failure(virsh(['event', '--all', '--loop'], opts));
    // Another shell answers meanwhile; then the one running the blocked command is killed.
    await virsh(['echo', 'sync'], opts);
    const busy = busyShellPids();
    expect(busy).toHaveLength(1);
    process.kill(busy[0]!, 'SIGKILL');
    const err = await blocked;
    expect(err.reason).toBe('TOOL_FAILED');
    expect(err.message).toMatch(/^shell test: virsh failed: the virsh shell ended/);
    expect((await virsh(['domstate', 'test'], opts)).trim()).toBe('running');
  });
});

describe('the event stream', () => {
  it('is started again when it ends by itself', async () => {
    startEvents('virsh', URI);
    try {
      const first = await eventStreamPid(undefined);
      process.kill(first, 'SIGKILL');
      const second = await eventStreamPid(first);
      expect(second).not.toBe(first);
    } finally {
      stopEvents();
    }
  });

  it('ends when the agent process that started it dies', async () => {
    // An agent stand-in: starts the stream, prints the stream's pid, then is killed.
    const events = join(REPO, 'dist', 'agent', 'src', 'libvirt', 'virsh-events.js');
    const program = `
      const { startEvents } = await import(${JSON.stringify(events)});
      const { readFileSync } = await import('node:fs');
      startEvents('virsh', ${JSON.stringify(URI)});
      const kids = () => readFileSync('/proc/' + process.pid + '/task/' + process.pid + '/children', 'utf8').trim();
      while (kids() === '') await new Promise((r) => setImmediate(r));
      console.log(kids());
      setInterval(() => undefined, 1000);
    `;
    const agent = spawn(process.execPath, ['--input-type=module', '-e', program], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = Number((await once(agent.stdout, 'data'))[0].toString().trim());
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    agent.kill('SIGKILL');
    await once(agent, 'close');
    // The kernel signals the stream at once; it is gone (or a zombie nobody reaps) soon after.
    const deadline = Date.now() + 30_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });
});

/** The pid of this process's running event stream other than `not`, once there is one (bounded). */
async function eventStreamPid(not: number | undefined): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pid = virshChildren().find(
      (p) => p !== not && alive(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('event'),
    );
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new Error('no event stream started within 30 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a process runs (neither gone nor a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('block job events', () => {
  it('reads the block-job-2 lines of `virsh event --loop`, and only those', () => {
    expect(
      parseBlockJobEvent("event 'block-job-2' for domain 'one-7': Block Pull for vda completed"),
    ).toEqual({
      domain: 'one-7',
      kind: 'Block Pull',
      target: 'vda',
      status: 'completed',
    });
    expect(
      parseBlockJobEvent("event 'block-job-2' for domain 'one-7': Active Block Commit for sdb ready\n"),
    ).toEqual({ domain: 'one-7', kind: 'Active Block Commit', target: 'sdb', status: 'ready' });
    expect(
      parseBlockJobEvent("event 'block-job' for domain 'one-7': Block Pull for /x/disk.0 completed"),
    ).toBe(undefined);
    expect(parseBlockJobEvent("event 'lifecycle' for domain 'one-7': Suspended Paused")).toBe(undefined);
  });
});
