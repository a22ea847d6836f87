/**
 * Our side of the image registration benchmark (bench/image-cp/run.ts): two real agents (the
 * front-end and host01) started by the demo stack, driven as the coordinator's datastore cp drives
 * them, over gRPC with mutual TLS. Images land in image datastore 1 of the host.
 */
import { loadTls } from '../../common/src/tls.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { AgentClient } from '../../coordinator/src/agents/agent-client.js';
import { Stack } from '../../cli/src/demo/stack.js';
import { ImageFormat, type ImportImageRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { importRequest } from '../../test/support/agent/import-images.js';

const DATASTORE = '/var/lib/one/datastores/1';
const CONTROL_DEADLINE_MS = 30_000;
const TRANSFER_DEADLINE_MS = 15 * 60_000;

export interface Ours {
  /** Local path of image `name` of datastore 1 on `host`. */
  dest(host: 'frontend' | 'host01', name: string): string;
  /** ImportImage of an http(s) URL on the front-end's agent. */
  importUrl(url: string, md5: string, name: string, signal: AbortSignal): Promise<void>;
  /** A front-end file to host01: OpenImportSource on the front-end, ImportImage (remote) on host01. */
  importFromFrontend(path: string, md5: string, name: string, signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

/** `importDir`: the front-end directory the uploads sit in (its agent's imports.dirs). */
export async function startOurs(importDir: string): Promise<Ours> {
  const stack = await Stack.start({
    hosts: ['frontend', 'host01'],
    agentSettings: (name) => (name === 'frontend' ? { imports: { dirs: [importDir] } } : {}),
  });
  const tls = loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'bench');
  const client = (name: string): AgentClient =>
    new AgentClient({ name, endpoint: `127.0.0.1:${stack.agentPort(name)}`, certName: name }, tls);
  const fe = client('frontend');
  const host = client('host01');
  try {
    for (const agent of [fe, host])
      await agent.call(
        'makeDir',
        { path: DATASTORE },
        { deadlineMs: CONTROL_DEADLINE_MS, requestId: 'bench' },
      );
  } catch (err) {
    fe.close();
    host.close();
    await stack.stop();
    throw err;
  }
  const base = (name: string): ImportImageRequest =>
    importRequest({ destination: `${DATASTORE}/${name}`, label: `bench ${name}` });
  const check = (what: string, format: ImageFormat): void => {
    if (format !== ImageFormat.IMAGE_FORMAT_QCOW2)
      throw new Error(`${what}: registered as ${format}, not qcow2`);
  };
  return {
    dest: (h, name) => stack.localPath(h, `${DATASTORE}/${name}`),
    async importUrl(url, md5, name, signal) {
      const got = await fe.call(
        'importImage',
        { ...base(name), url, md5 },
        { deadlineMs: TRANSFER_DEADLINE_MS, requestId: `bench-${name}`, signal },
      );
      check(name, got.format);
    },
    async importFromFrontend(path, md5, name, signal) {
      const opts = { deadlineMs: CONTROL_DEADLINE_MS, requestId: `bench-${name}`, signal };
      const offer = await fe.call(
        'openImportSource',
        {
          source: { path, safeDirs: [importDir], restrictedDirs: ['/'] },
          receiverName: host.agent.certName,
          ttlSeconds: 0,
        },
        opts,
      );
      const got = await host.call(
        'importImage',
        {
          ...base(name),
          remote: { ticket: offer.ticket, dataAddress: offer.dataAddress, sourceName: fe.agent.certName },
          md5,
        },
        { ...opts, deadlineMs: TRANSFER_DEADLINE_MS },
      );
      check(name, got.format);
    },
    async stop() {
      fe.close();
      host.close();
      await stack.stop();
    },
  };
}
