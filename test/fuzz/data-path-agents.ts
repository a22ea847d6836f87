// A real agent (in this process, its gRPC and data listeners on loopback) for the data-path fuzz:
// its own datastore root with a symlink towards the canary, a directory that receives land in, a
// source file to send; its log read for unexpected errors; Receive and OpenSend called over
// mutual TLS with the coordinator's certificate.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { parseAgentConfig } from '../../agent/src/config.js';
import { startAgent } from '../../agent/src/server.js';
import { REASON_METADATA_KEY } from '../../common/src/errors.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import type { ReceiveRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { AGENT_NAME, LOCATION, agentClient, ds } from '../support/agent/agent-fixture.js';

export type Mode = 'tls' | 'none';

export type CallResult = { ok: true; digest: string } | { ok: false; reason: string; message: string };

export interface FuzzAgent {
  /** The local datastore root (LOCATION on the agent's side). */
  root: string;
  dataPort: number;
  /** Error-level log lines, and any "unexpected error", unhandled or uncaught. */
  unexpected: string[];
  receive(req: ReceiveRequest): Promise<CallResult>;
  /** A ticket for the source file `0/src/disk.0`, bound to `receiver`. */
  openSend(receiver: string): Promise<string>;
  close(): Promise<void>;
}

/** Receive's deadline: a receive that neither ends nor fails by then is hung. */
const RECEIVE_DEADLINE_MS = 20_000;

export async function startFuzzAgent(
  base: string,
  pkiDir: string,
  mode: Mode,
  canary: string,
  source: Buffer,
): Promise<FuzzAgent> {
  const root = join(base, `datastores-${mode}`);
  await mkdir(join(root, '0', 'in'), { recursive: true });
  await mkdir(join(root, '0', 'src'), { recursive: true });
  await writeFile(join(root, '0', 'src', 'disk.0'), source);
  await symlink(canary, join(root, '0', 'escape'));
  const unexpected: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (/"level":(50|60)|"msg":"unexpected error"|unhandled|uncaught/i.test(line)) unexpected.push(line);
      done();
    },
  });
  const config = parseAgentConfig(
    {
      name: AGENT_NAME,
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: root }],
      tls: pkiFiles(pkiDir, AGENT_NAME),
      data: { encryption: mode },
    },
    'fuzz config',
  );
  const agent = await startAgent(config, pino({ level: 'warn' }, sink));
  const client = agentClient(agent.port, pkiDir);
  const dataPort = Number(agent.dataAddress.slice(agent.dataAddress.lastIndexOf(':') + 1));
  return {
    root,
    dataPort,
    unexpected,
    receive: (req) =>
      new Promise((resolve) => {
        client.receive(req, new grpc.Metadata(), { deadline: Date.now() + RECEIVE_DEADLINE_MS }, (err, res) =>
          resolve(
            err
              ? {
                  ok: false,
                  reason:
                    err.code === grpc.status.DEADLINE_EXCEEDED
                      ? 'DEADLINE_EXCEEDED'
                      : String(err.metadata?.get(REASON_METADATA_KEY)[0] ?? ''),
                  message: err.details,
                }
              : { ok: true, digest: res.digest },
          ),
        );
      }),
    openSend: (receiver) =>
      new Promise((resolve, reject) => {
        client.openSend(
          { path: ds('0/src/disk.0'), ttlSeconds: 0, receiverName: receiver },
          new grpc.Metadata(),
          { deadline: Date.now() + RECEIVE_DEADLINE_MS },
          (err, res) => (err ? reject(err) : resolve(res.ticket)),
        );
      }),
    close: async () => {
      client.close();
      await agent.close();
    },
  };
}
