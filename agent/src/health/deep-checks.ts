import { connect } from 'node:net';
import { certificateExpiry } from '../../../common/src/certificate-expiry.js';
import { oneLine } from '../../../common/src/errors.js';
import type { HealthCheck } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { HealthSources } from './health-sources.js';
import { hypervisorChecks } from './hypervisor-checks.js';
import { qemuImgChecks } from './qemu-img-checks.js';
import type { RootFinding } from './root-health.js';

/** A TCP connect on the data path's own address answers at once when it listens. */
const DATA_PATH_CONNECT_TIMEOUT_MS = 3_000;

/**
 * Health's deep checks: the tools and versions the actions need, each root's owner, the data-path
 * listener at its advertised address, the certificate's role and expiry. One line each, with a fix.
 */
export async function deepChecks(
  sources: HealthSources,
  roots: readonly RootFinding[],
  name: string,
  nowMs: number,
  signal: AbortSignal,
): Promise<HealthCheck[]> {
  const [qemuImg, hypervisor, dataPath] = await Promise.all([
    qemuImgChecks(signal),
    hypervisorChecks(sources.libvirt, signal),
    dataPathCheck(sources.dataAddress()),
  ]);
  return [
    ...qemuImg,
    ...hypervisor,
    ...roots.map(rootCheck),
    dataPath,
    certificateCheck(sources, name, nowMs),
  ];
}

/** The agent's user (this process) must own each root: what it creates there must be oneadmin's. */
function rootCheck(root: RootFinding): HealthCheck {
  const name = `root ${root.location}`;
  const uid = process.getuid?.() ?? 0;
  if (!root.ok) return { name, ok: false, warning: false, detail: root.detail, fix: fixFor(root, uid) };
  if (root.ownerUid !== uid) {
    return {
      name,
      ok: false,
      warning: false,
      detail: `${root.root} is owned by uid ${root.ownerUid ?? '?'}, not the agent's user (uid ${uid})`,
      fix: `chown ${uid} ${root.root} (as the agent's user and group, e.g. oneadmin:oneadmin)`,
    };
  }
  return {
    name,
    ok: true,
    warning: false,
    detail: `${root.root}, owned by the agent's user (uid ${uid})`,
    fix: '',
  };
}

function fixFor(root: RootFinding, uid: number): string {
  return /missing/.test(root.detail)
    ? `create ${root.root} owned by the agent's user (uid ${uid}), or correct roots[].path in the agent's config`
    : `give the agent's user (uid ${uid}) write access to ${root.root}`;
}

function dataPathCheck(address: string): Promise<HealthCheck> {
  const name = 'data path';
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(at + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: DATA_PATH_CONNECT_TIMEOUT_MS });
    const done = (check: HealthCheck): void => {
      socket.destroy();
      resolve(check);
    };
    socket.once('connect', () =>
      done({ name, ok: true, warning: false, detail: `listening at ${address}`, fix: '' }),
    );
    socket.once('timeout', () =>
      done(failed(name, address, `no answer within ${DATA_PATH_CONNECT_TIMEOUT_MS} ms`)),
    );
    socket.once('error', (err) => done(failed(name, address, oneLine(err.message))));
  });
}

function failed(name: string, address: string, why: string): HealthCheck {
  return {
    name,
    ok: false,
    warning: false,
    detail: `${address}: ${why}`,
    fix: "set data.advertise (and data.listen) in the agent's config to an address of this host other agents can reach",
  };
}

function certificateCheck(sources: HealthSources, name: string, nowMs: number): HealthCheck {
  const { notAfterMs, subject, role } = sources.certificate;
  const expiry = certificateExpiry(notAfterMs, nowMs);
  const reissue = `one-storage pki issue --role agent --name ${name} --dir DIR --force, then copy it to this host and restart the agent`;
  const detail = `${subject}: role ${role}, ${expiry.text}`;
  if (role !== 'agent') return { name: 'certificate', ok: false, warning: false, detail, fix: reissue };
  if (expiry.state === 'expired')
    return { name: 'certificate', ok: false, warning: false, detail, fix: reissue };
  if (expiry.state === 'warning')
    return { name: 'certificate', ok: true, warning: true, detail, fix: reissue };
  return { name: 'certificate', ok: true, warning: false, detail, fix: '' };
}
