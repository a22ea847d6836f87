/**
 * OUR SIDE of bench/backup-ds: the real path through agents on loopback (cli/src/demo/stack.ts with
 * host01 = the VM host, backup01 = the backup server, frontend = the image datastore's host, their
 * datastore directories given by `hostDirs` so that the fixture's files are inside their roots),
 * driven as the coordinator drives them:
 *   - upload: OpenSend of the host's backup directory on host01 (receiver backup01), then
 *     ReceiveBackup on backup01 into `<BASE_PATH>/<vmid>/<backup id>` (the backup datastore's `backup`);
 *   - restore: OpenBackupChain on backup01 (receiver frontend) for the chain's files, then Receive
 *     on the front-end into the destination (image `cp` of a grpc_backup:// URL).
 * BENCH_DATA_ENCRYPTION=none runs the agents' data path without TLS (data.encryption: none).
 * While the agents do not implement the backup repository RPCs yet (UNSUPPORTED_ACTION), startOurs
 * says so and returns undefined, and run.ts measures the comparison side alone.
 */
import { loadTls } from '../../common/src/tls.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { StorageError } from '../../common/src/errors.js';
import { AgentClient } from '../../coordinator/src/agents/agent-client.js';
import { Stack } from '../../cli/src/demo/stack.js';

const CONTROL_DEADLINE_MS = 30_000;
const TRANSFER_DEADLINE_MS = 15 * 60_000;
const HOSTS = ['frontend', 'host01', 'backup01'] as const;
type Host = (typeof HOSTS)[number];

/** Each host's local directory standing for /var/lib/one/datastores. */
export interface OursLayout {
  hostDatastores: string;
  backupDatastores: string;
  frontendDatastores: string;
}

export interface Ours {
  /** OpenSend of `srcDir` (oned view, on host01) + ReceiveBackup into `backupDir` (oned view, on backup01). */
  upload(srcDir: string, backupDir: string, signal: AbortSignal): Promise<void>;
  /** OpenBackupChain of `chain` (oned view, on backup01, oldest first) + Receive into `dest` (on the front-end). */
  restoreChain(chain: readonly string[], dest: string, signal: AbortSignal): Promise<void>;
  /** PIDs whose CPU counts for ours: the three agents. */
  pids(): readonly number[];
  stop(): Promise<void>;
}

export async function startOurs(layout: OursLayout): Promise<Ours | undefined> {
  const encryption = process.env['BENCH_DATA_ENCRYPTION'];
  const stack = await Stack.start({
    hosts: HOSTS,
    ...(encryption === 'none' || encryption === 'tls' ? { dataEncryption: encryption } : {}),
    hostDirs: {
      frontend: layout.frontendDatastores,
      host01: layout.hostDatastores,
      backup01: layout.backupDatastores,
    },
  });
  const tls = loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'bench');
  const clients = Object.fromEntries(
    HOSTS.map((name) => [
      name,
      new AgentClient({ name, endpoint: `127.0.0.1:${stack.agentPort(name)}`, certName: name }, tls),
    ]),
  ) as Record<Host, AgentClient>;
  const stop = async (): Promise<void> => {
    for (const c of Object.values(clients)) c.close();
    await stack.stop();
  };
  const opts = (deadlineMs: number): { deadlineMs: number; requestId: string } => ({
    deadlineMs,
    requestId: 'bench-backup-ds',
  });
  try {
    await clients.backup01.call(
      'listBackup',
      { backupDir: '/var/lib/one/datastores/100/0/000000000000', withTpmState: false },
      opts(CONTROL_DEADLINE_MS),
    );
  } catch (err) {
    await stop();
    if (err instanceof StorageError && err.reason === 'UNSUPPORTED_ACTION') {
      process.stdout.write(`ours: not measured, the agents do not implement it yet (${err.message})\n`);
      return undefined;
    }
    throw err;
  }
  return {
    async upload(srcDir, backupDir, signal) {
      void signal;
      const sending = await clients.host01.call(
        'openSend',
        { path: srcDir, ttlSeconds: 0, receiverName: 'backup01' },
        opts(CONTROL_DEADLINE_MS),
      );
      await clients.backup01.call(
        'receiveBackup',
        { ticket: sending.ticket, dataAddress: sending.dataAddress, sourceName: 'host01', backupDir },
        opts(TRANSFER_DEADLINE_MS),
      );
    },
    async restoreChain(chain, dest, signal) {
      void signal;
      const sending = await clients.backup01.call(
        'openBackupChain',
        { chain: [...chain], receiverName: 'frontend', ttlSeconds: 0 },
        opts(TRANSFER_DEADLINE_MS),
      );
      await clients.frontend.call(
        'receive',
        {
          ticket: sending.ticket,
          dataAddress: sending.dataAddress,
          sourceName: 'backup01',
          destination: dest,
          sparse: true,
        },
        opts(TRANSFER_DEADLINE_MS),
      );
    },
    pids: () => HOSTS.flatMap((h) => stack.agentPid(h) ?? []),
    stop,
  };
}
