import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { REASON_METADATA_KEY } from '../../../common/src/errors.js';
import { channelOptions, clientCredentials, loadTls } from '../../../common/src/tls.js';
import { AgentServiceClient } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { initCa, issueCertificate, pkiFiles } from '../../../common/src/pki/pki.js';

/** Test helpers shared by the agent's integration tests (not part of the agent). */

export const AGENT_NAME = 'host01';
/** The name of the coordinator's certificate (role coordinator), as the README and the demo name it. */
export const COORDINATOR_NAME = 'coordinator';
export const LOCATION = '/var/lib/one/datastores';
/** The oned-view path of `rel` under LOCATION (`ds('0/42/disk.0')`): what a driver call names. */
export const ds = (rel: string): string => `${LOCATION}/${rel}`;
/** Every test call gets a deadline: a hung agent fails the test instead of hanging it. */
export const CALL_DEADLINE_MS = 15_000;

export interface Pki {
  dir: string;
  /** A second, unrelated CA with a "coordinator" certificate (role coordinator) the agent must refuse. */
  otherDir: string;
}

/**
 * A temp directory with a real CA, an agent certificate for AGENT_NAME, a coordinator certificate
 * (role coordinator, what agentClient presents) and a foreign CA. Another agent's certificate, for
 * tests of what agents may not do: `issueCertificate(pki.dir, 'host02', ['127.0.0.1'])` (role agent).
 */
export async function makePki(base: string): Promise<Pki> {
  const dir = join(base, 'pki');
  const otherDir = join(base, 'other-pki');
  await initCa(dir);
  await issueCertificate(dir, AGENT_NAME, ['127.0.0.1']);
  await issueCertificate(dir, COORDINATOR_NAME, [], false, 'coordinator');
  await initCa(otherDir);
  await issueCertificate(otherDir, COORDINATOR_NAME, [], false, 'coordinator');
  return { dir, otherDir };
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A datastore root with system datastore 0 and image datastore 1. */
export async function makeDatastores(base: string): Promise<string> {
  const root = join(base, 'datastores');
  await mkdir(join(root, '0'), { recursive: true });
  await mkdir(join(root, '1'), { recursive: true });
  return root;
}

/**
 * A client of the agent AGENT_NAME (or `agent`) presenting `pkiDir`'s coordinator certificate (or,
 * with `as`, the certificate of that name, e.g. another agent's; or none) and checking the agent's name.
 */
export function agentClient(
  port: number,
  pkiDir: string,
  withCertificate = true,
  as = COORDINATOR_NAME,
  agent = AGENT_NAME,
): AgentServiceClient {
  const tls = loadTls(pkiFiles(pkiDir, as), 'test');
  const credentials = withCertificate ? clientCredentials(tls) : grpc.credentials.createSsl(tls.ca);
  return new AgentServiceClient(`127.0.0.1:${port}`, credentials, channelOptions(agent));
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/** Promise wrapper for one unary call, with a deadline and optional request id. */
export function call<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, requestId?: string): Promise<Res> {
  const metadata = new grpc.Metadata();
  if (requestId) metadata.set('x-request-id', requestId);
  return new Promise((resolve, reject) => {
    method(req, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** The error of a call that must fail, with its x-reason. */
export async function failure(
  p: Promise<unknown>,
): Promise<{ code: grpc.status; message: string; reason: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return {
      code: e.code,
      message: e.details,
      reason: String(e.metadata?.get(REASON_METADATA_KEY)[0] ?? ''),
    };
  }
  throw new Error('expected the call to fail');
}
