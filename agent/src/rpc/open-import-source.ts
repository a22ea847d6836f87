import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  OpenImportSourceRequest,
  OpenSendResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { resolveLocalImport } from '../import/local-source.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

/**
 * OpenImportSource: offers an operator's upload on this host (outside the roots) to the one agent
 * that will register it, as OpenSend does for datastore files. The path must pass the import rules
 * (docs/image-datastore.md#registering-an-image-cp-on-the-agent) on its resolved path and be a
 * regular file; the data path then serves exactly that file (same device and inode) to the named
 * receiver. Read-only; a repeat issues a new ticket.
 */
export async function openImportSource(
  agent: AgentContext,
  req: OpenImportSourceRequest,
  call: CallContext,
): Promise<OpenSendResponse> {
  const method = 'open import source';
  const source = req.source;
  if (!source || source.path === '')
    throw new StorageError('INVALID_ARGUMENT', `${method} on ${agent.name}: source.path is required`);
  requireField(agent, method, 'receiver_name', req.receiverName);
  const what = `${method} ${where(agent, source.path)}`;
  const real = await resolveLocalImport(source, agent.imports.dirs, what);
  const st = await stat(real).catch((err: unknown) => {
    throw asStorageError(err, what, '(stat)');
  });
  if (!st.isFile()) throw new StorageError('INVALID_ARGUMENT', `${what}: ${real} is not a regular file`);
  const offered = await agent.dataPath
    .openImportSource({
      file: real,
      path: source.path,
      receiverName: req.receiverName,
      ttlSeconds: req.ttlSeconds,
    })
    .catch((err: unknown) => {
      throw asStorageError(err, method, where(agent, source.path));
    });
  call.log.info(
    { path: source.path, real, receiver: req.receiverName, bytes: st.size },
    'import source offered',
  );
  return offered;
}
