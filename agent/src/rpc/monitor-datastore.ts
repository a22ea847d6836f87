import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  MonitorDatastoreRequest,
  MonitorDatastoreResponse,
  SetMonitorHostRequest,
  SetMonitorHostResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, where } from './context.js';
import { requireField } from './validate.js';

/**
 * Shared-datastore monitoring run once for the cloud (tm/qcow2/monitor, datastore/fs/monitor): the
 * capacity of the datastore's filesystem and, with vm_disks, its VMs' disk lines. Read-only apart
 * from creating a missing datastore directory, so no lock; a repeat gives the current figures.
 */
export async function monitorDatastore(
  agent: AgentContext,
  req: MonitorDatastoreRequest,
): Promise<MonitorDatastoreResponse> {
  const method = 'monitor datastore';
  const dir = requireField(agent, method, 'datastore_dir', req.datastoreDir);
  const local = await agent.roots.resolve(dir, 'datastore_dir');
  let capacity;
  try {
    capacity = await agent.monitoring.disks.capacity(local);
  } catch (err) {
    throw asStorageError(err, method, where(agent, dir));
  }
  const vmLines = req.vmDisks ? await agent.monitoring.disks.vmLines(local) : [];
  return { ...capacity, vmLines };
}

/** The coordinator tells the agent its OpenNebula host id (config's wins). A repeat succeeds. */
export async function setMonitorHost(
  agent: AgentContext,
  req: SetMonitorHostRequest,
): Promise<SetMonitorHostResponse> {
  if (!Number.isInteger(req.hostId) || req.hostId < 0) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `set monitor host on ${agent.name}: host_id must be a non-negative integer, got ${req.hostId}`,
    );
  }
  return { hostId: agent.monitoring.setHostId(req.hostId) };
}
