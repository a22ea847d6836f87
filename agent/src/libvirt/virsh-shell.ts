import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { StorageError, oneLine } from '../../../common/src/errors.js';
import { MIB } from '../../../common/src/units.js';

/** Output one command may print (a domain's XML is a few KiB): only guards memory against a runaway. */
const MAX_OUTPUT_BYTES = 16 * MIB;

export interface ShellCommand {
  readonly args: readonly string[];
  /** Starts the error message, as VirshOptions.what. */
  readonly what: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * One long-lived `virsh -c <uri> -q` shell (docs/live-operations.md#one-libvirt-connection-per-agent):
 * one process and one libvirt connection for many commands, so a live action pays a round trip to
 * libvirtd (about a millisecond) per step instead of a process start and a connection (25-55 ms).
 *
 * Commands go in on stdin, one at a time, each followed by two markers only this shell knows (a
 * random nonce and a sequence number): `echo --err` on stderr, then `echo` on stdout. A command's
 * output is what virsh printed before them, and it failed when its stderr holds an `error:` line, as
 * a one-shot virsh would have exited non-zero. Every argument is single-quoted for virsh's own
 * parser (no shell is involved; `;`, `#`, `$` and spaces are plain characters inside quotes); an
 * argument with a newline or NUL is refused before anything is sent.
 *
 * virsh echoes each line it reads (readline, even on a pipe) after its prompt, and long lines in a
 * scrolled form; the echo is one line, so a command's stdout starts after the first newline that
 * follows the prompt. A shell that times out, is cancelled mid-command, prints what this parser does
 * not expect, or exits is killed and never used again; the pool starts another.
 */
export class VirshShell {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly nonce = randomBytes(8).toString('hex');
  private seq = 0;
  private out = '';
  private err = '';
  private prompt: string | undefined;
  private pending: { marker: string; withErr: boolean; settle: () => void } | undefined;
  private exitWhy: string | undefined;
  private spawnError: NodeJS.ErrnoException | undefined;
  /** Set once the shell may not be used again. */
  dead = false;

  constructor(
    private readonly file: string,
    readonly uri: string,
  ) {
    this.child = spawn(file, ['-c', uri, '-q'], {
      env: { ...process.env, LANG: 'C', LC_ALL: 'C', TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (s: string) => this.take('out', s));
    this.child.stderr.on('data', (s: string) => this.take('err', s));
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (e: NodeJS.ErrnoException) => {
      this.spawnError = e;
      this.finish(oneLine(e.message));
    });
    this.child.on('close', (code, signal) => this.finish(`exit ${code ?? signal}`));
    this.idle(true);
  }

  /**
   * Runs one command and returns its stdout; rejects with TOOL_FAILED carrying virsh's own words,
   * as runTool does for a one-shot virsh. Never called while another command runs (the pool).
   */
  async run(cmd: ShellCommand): Promise<string> {
    for (const a of cmd.args) {
      if (/[\n\r\0]/.test(a)) {
        throw new StorageError('INVALID_ARGUMENT', `${cmd.what}: a virsh argument holds a line break`);
      }
    }
    if (this.prompt === undefined) {
      const hello = await this.exchange(null, cmd);
      this.prompt = hello.out.slice(0, hello.out.indexOf('echo '));
    }
    const { out, err } = await this.exchange(cmd.args, cmd);
    const errors = err
      .split('\n')
      .filter((l) => l.startsWith('error:'))
      .join('\n');
    if (errors !== '') {
      throw new StorageError('TOOL_FAILED', `${cmd.what}: ${this.file} failed: ${oneLine(errors)}`);
    }
    // After the prompt, virsh's echo of the command line (one line, however long), then its output.
    const body = out.replace(/^\n/, '');
    if (!body.startsWith(this.prompt ?? '')) return this.broken(cmd, 'an unexpected prompt');
    const nl = body.indexOf('\n');
    return nl < 0 ? '' : body.slice(nl + 1);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Kills the shell (the agent stops, or the shell is broken). */
  close(): void {
    this.dead = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }

  private async exchange(
    args: readonly string[] | null,
    cmd: ShellCommand,
  ): Promise<{ out: string; err: string }> {
    if (this.dead) throw this.gone(cmd);
    const n = ++this.seq;
    const quotedMark = `'OS${this.nonce}''-${n}'`;
    const mark = `OS${this.nonce}-${n}`;
    const lines = args === null ? '' : `${args.map(quote).join(' ')}\necho --err ${quotedMark}\n`;
    const tail = `${args === null ? '' : `${this.prompt}echo --err ${quotedMark}\n`}${this.prompt ?? ''}echo ${quotedMark}\n`;
    this.idle(false);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.close();
          reject(
            new StorageError('TOOL_FAILED', `${cmd.what}: ${this.file} timed out after ${cmd.timeoutMs} ms`),
          );
        }, cmd.timeoutMs);
        const onAbort = (): void => {
          this.close();
          reject(new StorageError('TOOL_FAILED', `${cmd.what}: ${this.file} was cancelled`));
        };
        const done = (): void => {
          clearTimeout(timer);
          cmd.signal?.removeEventListener('abort', onAbort);
          this.pending = undefined;
        };
        this.pending = {
          marker: mark,
          withErr: args !== null,
          settle: () => {
            done();
            if (this.dead && !this.complete(mark, args !== null)) reject(this.gone(cmd));
            else resolve();
          },
        };
        if (cmd.signal?.aborted) return onAbort();
        cmd.signal?.addEventListener('abort', onAbort, { once: true });
        this.child.stdin.write(`${lines}echo ${quotedMark}\n`);
        this.check();
      });
    } finally {
      if (!this.dead) this.idle(true);
    }
    const outEnd = this.out.indexOf(mark);
    const chunk = this.out.slice(0, outEnd);
    this.out = this.out.slice(outEnd + mark.length);
    let err = '';
    if (args !== null) {
      const errEnd = this.err.indexOf(`error: ${mark}\n`);
      err = this.err.slice(0, errEnd);
      this.err = this.err.slice(errEnd + `error: ${mark}\n`.length);
    } else {
      // Whatever virsh said while connecting (nothing when it connected) belongs to no command.
      this.err = '';
    }
    if (this.prompt !== undefined && !chunk.endsWith(tail)) return this.broken(cmd, 'unexpected output');
    return { out: this.prompt === undefined ? chunk : chunk.slice(0, chunk.length - tail.length), err };
  }

  private complete(mark: string, withErr: boolean): boolean {
    return this.out.includes(mark) && (!withErr || this.err.includes(`error: ${mark}\n`));
  }

  private take(stream: 'out' | 'err', s: string): void {
    if (stream === 'out') this.out += s;
    else this.err += s;
    if (this.out.length + this.err.length > MAX_OUTPUT_BYTES) {
      this.close();
      this.pending?.settle();
      return;
    }
    this.check();
  }

  private check(): void {
    const p = this.pending;
    if (p && this.complete(p.marker, p.withErr)) p.settle();
  }

  private finish(why: string): void {
    this.exitWhy ??= why;
    this.dead = true;
    this.pending?.settle();
  }

  private gone(cmd: ShellCommand): StorageError {
    const stderr = oneLine(
      this.err
        .split('\n')
        .filter((l) => l.startsWith('error:'))
        .join('\n'),
    );
    const why =
      this.spawnError?.code === 'ENOENT'
        ? `${this.file} is not installed (not found in PATH)`
        : `${this.file} failed: ${stderr || `the virsh shell ended (${this.exitWhy ?? 'killed'})`}`;
    return new StorageError('TOOL_FAILED', `${cmd.what}: ${why}`, {
      cause: this.spawnError ?? { code: this.child.exitCode, signal: this.child.signalCode },
    });
  }

  private broken(cmd: ShellCommand, what: string): never {
    this.close();
    throw new StorageError('TOOL_FAILED', `${cmd.what}: the virsh shell printed ${what}; it was restarted`);
  }

  /** An idle shell does not keep the agent's event loop alive. */
  private idle(on: boolean): void {
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      const h = s as unknown as { ref?: () => void; unref?: () => void };
      if (on) h.unref?.();
      else h.ref?.();
    }
    if (on) this.child.unref();
    else this.child.ref();
  }
}

/** One argument for virsh's command parser: single-quoted, a `'` written as `'\''`. */
export function quote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}
