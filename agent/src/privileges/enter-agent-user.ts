import { chown } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../../common/src/log.js';
import { loadTls, type TlsMaterial } from '../../../common/src/tls.js';
import type { AgentConfig } from '../config.js';
import { makeDirectory } from '../files/make-directory.js';
import { dropPrivileges, planPrivileges, type AgentUser } from './agent-user.js';

/**
 * Start-up's privileged part, before anything listens: read the TLS files (the key may be readable
 * by root alone), make the directories the agent writes outside its datastores, and become the
 * configured user. Everything after (the data path, the monitoring socket, the gRPC port, every
 * call) runs as that user, so nothing is ever served as root and whatever the agent creates
 * belongs to it. Returns the TLS material for startAgent.
 */
export async function enterAgentUser(config: AgentConfig, logger: Logger): Promise<TlsMaterial> {
  const plan = await planPrivileges(config);
  const tls = loadTls(config.tls, config.source);
  if (plan.kind === 'drop') {
    await prepareStateDirectories(config, plan.user);
    dropPrivileges(plan.user);
    logger.info(
      { user: plan.user.name, uid: plan.user.uid, gid: plan.user.gid },
      'running as the agent user',
    );
  } else if (plan.kind === 'root') {
    logger.warn(
      { config: config.source },
      'running as root: set "user" (oneadmin on an OpenNebula node) so the agent runs as QEMU\'s user and the disks it creates belong to it',
    );
  }
  return tls;
}

/**
 * The monitoring socket's directory (/run/one-storage by default, which only root may create) is
 * made now and handed to the user. One that exists is left as it is: it belongs to the operator
 * (systemd's RuntimeDirectory= makes it for the unit's user).
 */
async function prepareStateDirectories(config: AgentConfig, user: AgentUser): Promise<void> {
  if (!config.monitor) return;
  for (const dir of await makeDirectory(dirname(config.monitor.socket))) await chown(dir, user.uid, user.gid);
}
