import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

/** How a block job ended or where it stands, as libvirt's block-job-2 event says it. */
export type BlockJobStatus = 'completed' | 'failed' | 'canceled' | 'ready';

export interface BlockJobEvent {
  readonly domain: string;
  /** The disk's target (`vda`): block-job-2 names disks by target. */
  readonly target: string;
  /** "Block Pull", "Block Copy", "Block Commit", "Active Block Commit". */
  readonly kind: string;
  readonly status: BlockJobStatus;
}

/**
 * `virsh event --all --loop` prints one line per event (libvirt 9):
 * `event 'block-job-2' for domain 'one-7': Block Pull for vda completed`. Domain names that reach
 * the agent are checked (no quotes: domain.ts), so the quotes delimit them.
 */
const BLOCK_JOB_LINE =
  /^event 'block-job-2' for domain '([^']+)': (.+) for (\S+) (completed|failed|canceled|ready)$/;

export function parseBlockJobEvent(line: string): BlockJobEvent | undefined {
  const m = BLOCK_JOB_LINE.exec(line.trim());
  if (!m) return undefined;
  return { domain: m[1]!, kind: m[2]!, target: m[3]!, status: m[4] as BlockJobStatus };
}

/** The head line of any event: `event '<type>' for domain '<name>': ...`. */
const EVENT_LINE = /^event '([a-z0-9-]+)' for domain '([^']+)':/;

/** Any event's type and domain (`job-completed`, `lifecycle`, ...): what wakes a domain job's waiter. */
export interface DomainEvent {
  readonly type: string;
  readonly domain: string;
}

/** A stream that ended by itself is started again after this (doubling up to the max). */
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 30_000;

/** util-linux's setpriv: gives the event stream a parent-death signal. */
const SETPRIV = 'setpriv';

type Listener = (e: BlockJobEvent) => void;
type DomainListener = (e: DomainEvent) => void;

/**
 * One long-lived `virsh event --all --loop` per libvirt URI: block jobs end the moment libvirt says
 * so, instead of at virsh's next poll of `--wait` (every 500 ms). Started when the agent starts (or
 * by the first listener) and kept: a stream started for one job would not be registered with
 * libvirtd before a short job ends. One that ends by itself is started again (with a growing delay
while it keeps failing), and by the next listener. Events are
 * the fast path only: a waiter also polls, slowly (block-job-wait.ts), and is right without them.
 */
class EventStream {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly domainListeners = new Set<DomainListener>();
  private rest = '';
  /** Started without setpriv (not installed). */
  private direct = false;
  private stopped = false;
  private failures = 0;
  private restart: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string,
    private readonly uri: string,
  ) {}

  listen(fn: Listener): () => void {
    this.listeners.add(fn);
    this.start();
    return () => {
      this.listeners.delete(fn);
    };
  }

  listenDomains(fn: DomainListener): () => void {
    this.domainListeners.add(fn);
    this.start();
    return () => {
      this.domainListeners.delete(fn);
    };
  }

  start(): void {
    this.stopped = false;
    clearTimeout(this.restart);
    if (this.child) return;
    // `event --loop` never reads its stdin, so the agent's end would not end it: the kernel sends
    // it SIGTERM when the agent dies (setpriv --pdeathsig, util-linux), as it does the shells' EOF.
    const args = ['-c', this.uri, '-q', 'event', '--all', '--loop'];
    const child = spawn(
      this.direct ? this.file : SETPRIV,
      this.direct ? args : ['--pdeathsig', 'TERM', '--', this.file, ...args],
      { env: { ...process.env, LANG: 'C', LC_ALL: 'C', TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.rest = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      const lines = (this.rest + s).split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) {
        const head = EVENT_LINE.exec(line);
        if (!head) continue;
        const e = parseBlockJobEvent(line);
        if (e) for (const fn of [...this.listeners]) fn(e);
        const d = { type: head[1]!, domain: head[2]! };
        for (const fn of [...this.domainListeners]) fn(d);
      }
    });
    child.stderr.resume();
    child.stdin.on('error', () => undefined);
    child.on('error', (err: NodeJS.ErrnoException) => {
      // No setpriv on this host: the stream runs without it (it then outlives a killed agent).
      if (err.code === 'ENOENT' && !this.direct) this.direct = true;
    });
    const startedAt = performance.now();
    child.on('close', () => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      // Ended by itself (libvirtd restarted or down, the process killed): started again, at once
      // after a long life, else after a delay that doubles up to RESTART_MAX_MS.
      this.failures = performance.now() - startedAt > RESTART_MAX_MS ? 0 : this.failures + 1;
      const delay =
        this.failures === 0 ? 0 : Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** (this.failures - 1));
      this.restart = setTimeout(() => this.start(), delay);
      this.restart.unref();
    });
    // The stream itself must not keep the agent (or a test) running.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr])
      (s as unknown as { unref?: () => void }).unref?.();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restart);
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}

const streams = new Map<string, EventStream>();

function streamOf(file: string, uri: string): EventStream {
  const key = `${file}\0${uri}`;
  let s = streams.get(key);
  if (!s) {
    s = new EventStream(file, uri);
    streams.set(key, s);
  }
  return s;
}

/** Calls `fn` for every block-job-2 event of `uri` until the returned function is called. */
export function onBlockJobEvents(file: string, uri: string, fn: Listener): () => void {
  return streamOf(file, uri).listen(fn);
}

/** Calls `fn` with the type and domain of every event of `uri` until the returned function is called. */
export function onDomainEvents(file: string, uri: string, fn: DomainListener): () => void {
  return streamOf(file, uri).listenDomains(fn);
}

/** Starts listening to `uri`'s events before any job needs them (the agent's start). */
export function startEvents(file: string, uri: string): void {
  streamOf(file, uri).start();
}

/** Stops every event stream (the agent is stopping). */
export function stopEvents(): void {
  for (const s of streams.values()) s.stop();
  streams.clear();
}
