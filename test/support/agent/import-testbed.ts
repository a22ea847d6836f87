/**
 * The testbed of the image registration RPCs (ImportImage, OpenImportSource, ProbeImageSource):
 * agent host01 (mutual TLS on loopback, datastore root with datastores 0 and 1, imports.dirs set
 * to a scratch `uploads` directory, log lines captured), optionally a second agent host02 with its
 * own uploads directory (a remote source), and an image server (test/support/image-server.ts).
 * Call `const t = useImportTestbed()` once at the top of a test file.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { issueCertificate, pkiFiles } from '../../../common/src/pki/pki.js';
import { parseAgentConfig } from '../../../agent/src/config.js';
import { type RunningAgent, startAgent } from '../../../agent/src/server.js';
import type { AgentServiceClient } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type ImageServer, startImageServer } from '../image-server.js';
import { type LogCapture, type LogLine, captureLog } from '../log-capture.js';
import {
  AGENT_NAME,
  LOCATION,
  type Pki,
  agentClient,
  makeDatastores,
  makePki,
  makeTempDir,
} from './agent-fixture.js';

export const SECOND_AGENT = 'host02';

export interface ImportAgent {
  name: string;
  agent: RunningAgent;
  /** A coordinator's client of this agent. */
  client: AgentServiceClient;
  /** Its datastore root (served as LOCATION) and upload directory (imports.dirs). */
  root: string;
  uploads: string;
  /** Its log, captured. */
  readonly log: LogCapture;
}

export interface ImportTestbed extends ImportAgent {
  base: string;
  pki: Pki;
  images: ImageServer;
  /** host02, when asked for. */
  second: ImportAgent;
  /** The local path of `rel` under host01's datastore root. */
  local(rel: string): string;
  /** Every name in host01's directory `rel` (temporaries included). */
  entries(rel: string): Promise<string[]>;
  /** Resolves when a log line of host01 matches (or rejects after `ms`). */
  logged(match: (line: LogLine) => boolean, ms?: number): Promise<LogLine>;
}

export const ds = (rel: string): string => `${LOCATION}/${rel}`;

async function startOne(base: string, pki: Pki, name: string): Promise<ImportAgent> {
  const root = await makeDatastores(join(base, name));
  const uploads = join(base, name, 'uploads');
  await mkdir(uploads, { recursive: true });
  const log = captureLog();
  const config = parseAgentConfig(
    {
      name,
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: root }],
      tls: pkiFiles(pki.dir, name),
      imports: { dirs: [uploads] },
    },
    'test config',
  );
  const agent = await startAgent(config, pino({ level: 'info' }, log.sink));
  const client = agentClient(agent.port, pki.dir, true, 'coordinator', name);
  return { name, agent, client, root, uploads, log };
}

export function useImportTestbed(options: { second?: boolean } = {}): ImportTestbed {
  const t = {} as ImportTestbed;
  beforeAll(async () => {
    t.base = await makeTempDir('import-rpcs-');
    t.pki = await makePki(t.base);
    Object.assign(t, await startOne(t.base, t.pki, AGENT_NAME));
    if (options.second) {
      await issueCertificate(t.pki.dir, SECOND_AGENT, ['127.0.0.1']);
      t.second = await startOne(t.base, t.pki, SECOND_AGENT);
    }
    t.images = await startImageServer();
    t.local = (rel) => join(t.root, rel);
    t.entries = async (rel) => (await readdir(join(t.root, rel)).catch(() => [])).sort();
    t.logged = (match, ms) => t.log.waitFor(match, ms);
  });
  afterAll(async () => {
    t.client?.close();
    t.second?.client.close();
    await t.agent?.close();
    await t.second?.agent.close();
    await t.images?.close();
    if (t.base) await rm(t.base, { recursive: true, force: true });
  });
  return t;
}
