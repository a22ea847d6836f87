import { X509Certificate } from 'node:crypto';
import { dirname } from 'node:path';
import { identityOfCertificate, pkiIssueCommand } from '../../common/src/certificate-role.js';
import { StorageError, oneLine } from '../../common/src/errors.js';
import type { Logger } from '../../common/src/log.js';
import type { TlsMaterial } from '../../common/src/tls.js';
import type { AgentConfig } from './config.js';

/**
 * Checks the agent's own certificate at start-up, where a mistake is cheap to explain:
 * - it must carry the agent's name: peers check it against the OpenNebula hostname, and a
 *   certificate for another name would fail every connection later with a TLS error far from the cause;
 * - it must not have the coordinator role: that key drives every agent of the cloud, and an agent
 *   (reachable by other hosts over the data path) is the wrong place to keep it;
 * - a certificate from before roles still works (it serves this agent and the data path; only
 *   control RPCs need a role, and those come from the coordinator), so it only earns a warning
 *   naming the command that reissues it.
 */
export function checkAgentCertificate(tls: TlsMaterial, config: AgentConfig, logger: Logger): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(tls.cert);
  } catch (err) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${config.source}: tls.cert: not a PEM certificate (${oneLine(err instanceof Error ? err.message : String(err))})`,
    );
  }
  if (cert.checkHost(config.name) === undefined) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${config.source}: tls.cert: the certificate (${oneLine(cert.subject)}) does not carry the agent name "${config.name}"`,
    );
  }
  const { name, role } = identityOfCertificate(cert);
  const reissue = pkiIssueCommand('agent', config.name, dirname(config.tls.cert), true);
  switch (role) {
    case 'agent':
      return;
    case 'none':
      logger.warn(
        { cert: config.tls.cert },
        `tls.cert: the certificate "${name}" carries no one-storage role (issued before roles); it still serves this agent and the data path, but reissue it with "${reissue}"`,
      );
      return;
    case 'coordinator':
    case 'conflicting':
      throw new StorageError(
        'CONFIG_INVALID',
        `config ${config.source}: tls.cert: the certificate "${name}" has the ${role === 'coordinator' ? 'coordinator role' : 'coordinator and agent roles'}; an agent needs an agent certificate of its own: ${pkiIssueCommand('agent', config.name, dirname(config.tls.cert), false)}`,
      );
  }
}
