import { asStorageError } from '../../../common/src/errors.js';
import type {
  OpenSendRequest,
  OpenSendResponse,
  ReceiveRequest,
  ReceiveResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

/**
 * OpenSend: validates and confines the path, then lets the data path prepare the single-use ticket
 * for the named receiver (it resolves the path again through the same Roots). Read-only on disk, so no lock: the
 * sending side reads a stable source because the coordinator does not mutate what it is moving.
 */
export async function openSend(
  agent: AgentContext,
  req: OpenSendRequest,
  _call: CallContext,
): Promise<OpenSendResponse> {
  const path = requireField(agent, 'open send', 'path', req.path);
  requireField(agent, 'open send', 'receiver_name', req.receiverName);
  await agent.roots.resolve(path, 'path');
  // The data path logs the ticket it issues; the interceptor logs the call.
  return agent.dataPath.openSend(req).catch((err: unknown) => {
    throw asStorageError(err, 'open send', where(agent, path));
  });
}

/**
 * Receive: pulls a ticket's content into `destination`, holding the destination's lock for the
 * whole transfer so a concurrent Delete or Copy of the same path waits or is told to retry.
 */
export async function receive(
  agent: AgentContext,
  req: ReceiveRequest,
  call: CallContext,
): Promise<ReceiveResponse> {
  requireField(agent, 'receive', 'ticket', req.ticket);
  requireField(agent, 'receive', 'data_address', req.dataAddress);
  requireField(agent, 'receive', 'source_name', req.sourceName);
  const destination = requireField(agent, 'receive', 'destination', req.destination);
  const local = await agent.roots.resolve(destination, 'destination');
  const what = `receive into ${where(agent, destination)}`;
  return agent.locks.withLock(
    [local],
    what,
    async () => {
      // The data path logs what it received (bytes, files, duration).
      return agent.dataPath.receive(req, call.signal, call.progress).catch((err: unknown) => {
        throw asStorageError(err, 'receive into', where(agent, destination));
      });
    },
    call.signal,
  );
}
