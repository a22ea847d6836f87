// `one-storage doctor` without --host: the front-end end to end, in the order a driver call needs
// it: the coordinator's config, its CA and certificate, its socket, oned with its credentials, the
// shims in oned's remotes, oned.conf's declarations and vmm_execrc's LIVE_DISK_SNAPSHOTS.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { certificateExpiry } from '../../../common/src/certificate-expiry.js';
import { identityOfCertificate, pkiIssueCommand } from '../../../common/src/certificate-role.js';
import { StorageError, oneLine } from '../../../common/src/errors.js';
import { loadTls, type TlsMaterial } from '../../../common/src/tls.js';
import { loadCoordinatorConfig, type CoordinatorConfig } from '../../../coordinator/src/config.js';
import { readOneAuth } from '../../../coordinator/src/oned/one-auth.js';
import { OnedClient } from '../../../coordinator/src/oned/oned-client.js';
import { editOnedConf } from '../oned-conf/edit-oned-conf.js';
import { pingCoordinator } from '../status/coordinator-status.js';
import { editVmmExecrc, ourLiveSnapshotPairs } from '../vmm-execrc/edit-vmm-execrc.js';
import { fail, ok, warn, type DoctorCheck } from './doctor-check.js';
import { shimChecks } from './shim-checks.js';

export interface FrontendPaths {
  config: string;
  onedConf: string;
  vmmExecrc: string;
  /** This version's run-shim.cjs. */
  runtimePath: string;
}

export async function frontendChecks(paths: FrontendPaths): Promise<DoctorCheck[]> {
  let config: Readonly<CoordinatorConfig>;
  try {
    config = loadCoordinatorConfig(paths.config);
  } catch (err) {
    return [fail('config', message(err), `correct ${paths.config} (docs/install.md lists its keys)`)];
  }
  const checks: DoctorCheck[] = [ok('config', `${paths.config} is valid (${config.agents.size} agents)`)];
  let tls: TlsMaterial;
  try {
    tls = loadTls(config.tls, config.source);
  } catch (err) {
    return [
      ...checks,
      fail('certificates', message(err), 'point tls.ca, tls.cert and tls.key at readable PEM files'),
    ];
  }
  checks.push(...certificateChecks(config, tls));
  const ping = await pingCoordinator(config.socket);
  checks.push(
    !('why' in ping)
      ? ok('shim socket', `${config.socket} answers (coordinator ${ping.version})`)
      : fail(
          'shim socket',
          `${config.socket}: ${ping.why}`,
          'systemctl start one-storage-coordinator (journalctl -u one-storage-coordinator says why it stopped)',
        ),
  );
  checks.push(await onedCheck(config));
  checks.push(...(await shimChecks(config.remotesDir, config.socket, paths.runtimePath)));
  checks.push(
    await declarationCheck('oned.conf', paths.onedConf, editOnedConf, {
      present: 'declares the one-storage drivers (TM_MAD, DATASTORE_MAD, TM_MAD_CONF, DS_MAD_CONF)',
      lacking:
        "lacks some of the one-storage drivers' declarations (TM_MAD, DATASTORE_MAD, TM_MAD_CONF, DS_MAD_CONF)",
      fix: `one-storage oned-conf --apply ${paths.onedConf}, then restart oned`,
    }),
  );
  checks.push(
    await declarationCheck('vmm_execrc', paths.vmmExecrc, editVmmExecrc, {
      present: `LIVE_DISK_SNAPSHOTS holds ${ourLiveSnapshotPairs().join(' ')}`,
      lacking: `LIVE_DISK_SNAPSHOTS lacks some of ${ourLiveSnapshotPairs().join(' ')} (live disk snapshots would be refused)`,
      fix: `one-storage vmm-execrc --apply ${paths.vmmExecrc}, then restart oned`,
    }),
  );
  return checks;
}

function certificateChecks(config: Readonly<CoordinatorConfig>, tls: TlsMaterial): DoctorCheck[] {
  const now = Date.now();
  let ca: X509Certificate;
  let cert: X509Certificate;
  try {
    ca = new X509Certificate(tls.ca);
    cert = new X509Certificate(tls.cert);
  } catch (err) {
    return [
      fail(
        'certificates',
        `tls.ca or tls.cert is not a PEM certificate (${message(err)})`,
        'point them at the files `one-storage pki` wrote',
      ),
    ];
  }
  const checks: DoctorCheck[] = [];
  const caExpiry = certificateExpiry(Date.parse(ca.validTo), now);
  const caText = `${config.tls.ca}: ${ca.subject.split('\n').join(', ')}, ${caExpiry.text}`;
  const caFix = 'make a new CA (one-storage pki init) and reissue every certificate from it';
  checks.push(
    !ca.ca
      ? fail('CA', `${config.tls.ca} is not a CA certificate`, caFix)
      : caExpiry.state === 'expired'
        ? fail('CA', caText, caFix)
        : caExpiry.state === 'warning'
          ? warn('CA', caText, caFix)
          : ok('CA', caText),
  );
  const { name, role } = identityOfCertificate(cert);
  const expiry = certificateExpiry(Date.parse(cert.validTo), now);
  const reissue = pkiIssueCommand('coordinator', name, dirname(config.tls.cert), true);
  const text = `${config.tls.cert}: "${name}", role ${role}, ${expiry.text}`;
  if (role !== 'coordinator') checks.push(fail('coordinator certificate', text, reissue));
  else if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    checks.push(
      fail('coordinator certificate', `${config.tls.cert} is not signed by ${config.tls.ca}`, reissue),
    );
  } else if (!cert.checkPrivateKey(createPrivateKey(tls.key))) {
    checks.push(
      fail('coordinator certificate', `${config.tls.key} is not the key of ${config.tls.cert}`, reissue),
    );
  } else if (expiry.state === 'expired') checks.push(fail('coordinator certificate', text, reissue));
  else if (expiry.state === 'warning') checks.push(warn('coordinator certificate', text, reissue));
  else checks.push(ok('coordinator certificate', text));
  return checks;
}

/** oned at its endpoint, with the coordinator's credentials: one.system.version, the cheapest call. */
async function onedCheck(config: Readonly<CoordinatorConfig>): Promise<DoctorCheck> {
  let session: string;
  try {
    session = await readOneAuth(config.oned.auth);
  } catch (err) {
    return fail(
      'oned',
      message(err),
      `write oneadmin's "user:password" into ${config.oned.auth} (mode 0600)`,
    );
  }
  const oned = new OnedClient({
    endpoint: config.oned.endpoint,
    session,
    deadlineMs: config.oned.deadlineMs,
  });
  try {
    const xml = await oned.version();
    const version = /<VERSION>([^<]*)<\/VERSION>/.exec(xml)?.[1] ?? oneLine(xml);
    return ok(
      'oned',
      `${config.oned.endpoint} answers with the credentials of ${config.oned.auth} (OpenNebula ${version})`,
    );
  } catch (err) {
    return fail(
      'oned',
      message(err),
      `check that oned runs with its gRPC endpoint at ${config.oned.endpoint} and that ${config.oned.auth} holds valid credentials`,
    );
  } finally {
    oned.close();
  }
}

/** A front-end file our --apply edits: present when applying would change nothing. */
async function declarationCheck(
  name: string,
  file: string,
  edit: (text: string, edit: 'apply', file: string) => string,
  words: { present: string; lacking: string; fix: string },
): Promise<DoctorCheck> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fail(
      name,
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? message(err)})`,
      `give the path with --${name === 'oned.conf' ? 'oned-conf' : 'vmm-execrc'} FILE`,
    );
  }
  try {
    return edit(text, 'apply', file) === text
      ? ok(name, `${file}: ${words.present}`)
      : fail(name, `${file}: ${words.lacking}`, words.fix);
  } catch (err) {
    return fail(name, message(err), words.fix);
  }
}

function message(err: unknown): string {
  return err instanceof StorageError || err instanceof Error ? oneLine(err.message) : String(err);
}
