import { dirname } from 'node:path';
import { identityOfCertificate, pkiIssueCommand } from '../../common/src/certificate-role.js';
import { StorageError, oneLine } from '../../common/src/errors.js';
import type { TlsMaterial } from '../../common/src/tls.js';
import type { CoordinatorConfig } from './config.js';

/** The name `pki issue` gives the coordinator's certificate in the README and the demo. */
const COORDINATOR_NAME = 'coordinator';

/**
 * The coordinator's certificate must have the coordinator role: agents refuse every control RPC
 * from any other certificate. Refused at start-up, in one line naming the command that fixes it,
 * instead of every driver call failing later with the agents' refusal.
 */
export function checkCoordinatorCertificate(tls: TlsMaterial, config: Readonly<CoordinatorConfig>): void {
  let identity;
  try {
    identity = identityOfCertificate(tls.cert);
  } catch (err) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${config.source}: tls.cert: not a PEM certificate (${oneLine(err instanceof Error ? err.message : String(err))})`,
    );
  }
  const dir = dirname(config.tls.cert);
  const cert = `config ${config.source}: tls.cert: the certificate "${identity.name}" (${config.tls.cert})`;
  switch (identity.role) {
    case 'coordinator':
      return;
    case 'none':
      throw new StorageError(
        'CONFIG_INVALID',
        `${cert} carries no one-storage role (issued before roles), and agents accept control calls only from the coordinator role: reissue it with "${pkiIssueCommand('coordinator', identity.name, dir, true)}"`,
      );
    case 'agent':
    case 'conflicting':
      throw new StorageError(
        'CONFIG_INVALID',
        `${cert} has the ${identity.role === 'agent' ? 'agent role' : 'coordinator and agent roles'}, and agents accept control calls only from the coordinator role: issue one with "${pkiIssueCommand('coordinator', COORDINATOR_NAME, dir, false)}" and point tls.cert and tls.key at it`,
      );
  }
}
