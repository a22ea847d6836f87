import { chmod } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { oneLine } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import { removeStaleSocket } from '../../../common/src/sockets/remove-stale-socket.js';
import { makeDirectory } from '../files/make-directory.js';

/**
 * The agent's local monitoring endpoint, for `tm/<drv>/monitor_ds` and the kvm-probes.d probes: they
 * run on this host, where the agent is, so they need neither the coordinator nor TLS. One request per
 * connection, one line:
 *
 *   `VM <datastore_path>`  the `VM = [...]` lines of that datastore (monitor_ds's output)
 *   `VM`                   the lines of every marked datastore (vm/monitor probe)
 *   `SYSTEM`               the DS_LOCATION_* and `DS = [...]` lines (host/system probe)
 *
 * The reply is `OK\n` and the text, or `ERROR <one line>\n`; the server then closes. In push mode
 * the agent reports itself and answers OK with nothing, so nothing reaches monitord twice.
 */
export const MAX_REQUEST_BYTES = 4096 + 16;
/** A client that connects and says nothing is dropped after this long. */
const REQUEST_TIMEOUT_MS = 10_000;

export type Query = { kind: 'vm'; path?: string } | { kind: 'system' };
export type Answer = (query: Query) => Promise<string[]>;

export function parseQuery(line: string): Query | string {
  const m = /^(VM|SYSTEM)(?: (\S+))?$/.exec(line.trim());
  if (!m) return `unknown request "${oneLine(line).slice(0, 80)}" (expected VM [path] or SYSTEM)`;
  if (m[1] === 'SYSTEM') return m[2] === undefined ? { kind: 'system' } : 'SYSTEM takes no argument';
  return m[2] === undefined ? { kind: 'vm' } : { kind: 'vm', path: m[2] };
}

export class LocalEndpoint {
  private server: Server | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly mode: number,
    private readonly answer: Answer,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await makeDirectory(dirname(this.socketPath));
    await removeStaleSocket(this.socketPath, 'one-storage-agent');
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.socketPath, this.mode);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    let buffered = '';
    let done = false;
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    const finish = (text: string): void => {
      done = true;
      socket.end(text);
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl < 0 && buffered.length < MAX_REQUEST_BYTES) return;
      if (nl < 0) return finish(`ERROR request longer than ${MAX_REQUEST_BYTES} bytes\n`);
      done = true;
      const query = parseQuery(buffered.slice(0, nl));
      if (typeof query === 'string') return finish(`ERROR ${query}\n`);
      this.answer(query).then(
        (lines) => socket.end(`OK\n${lines.map((l) => `${l}\n`).join('')}`),
        (err: unknown) => {
          const message = oneLine(err instanceof Error ? err.message : String(err));
          this.logger.warn({ query, err: message }, 'monitoring: local query failed');
          socket.end(`ERROR ${message}\n`);
        },
      );
    });
  }
}
