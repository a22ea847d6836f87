/**
 * One side of the transfer benchmark in its own process, as an agent would be: a TransferService
 * driven by its parent over the IPC channel (fork). Messages: {id, op, ...} in, {id, ok, value |
 * error} out. Not a daemon: it exits when the parent says "close" or disconnects.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import type { ReceiveRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { TransferService } from '../../agent/src/transfer/transfer-service.js';
import { rootResolver } from '../../agent/src/transfer/test-support.js';

interface StartMsg {
  op: 'start';
  name: string;
  files: { ca: string; cert: string; key: string };
  root: string;
  plaintext: boolean;
}
type Msg =
  | ({ id: number } & StartMsg)
  | { id: number; op: 'openSend'; path: string }
  | { id: number; op: 'receive'; req: ReceiveRequest }
  | { id: number; op: 'close' };

let service: TransferService | undefined;

async function handle(msg: Msg): Promise<unknown> {
  switch (msg.op) {
    case 'start': {
      const tls = {
        ca: await readFile(msg.files.ca),
        cert: await readFile(msg.files.cert),
        key: await readFile(msg.files.key),
      };
      service = new TransferService({
        name: msg.name,
        tls,
        listen: '127.0.0.1:0',
        resolve: rootResolver(msg.root),
        logger: pino({ level: 'warn' }, pino.destination(2)),
        plaintextData: msg.plaintext,
      });
      await service.start();
      return service.dataAddress();
    }
    case 'openSend':
      return (service as TransferService).openSend({ path: msg.path, ttlSeconds: 0 });
    case 'receive':
      return (service as TransferService).receive(msg.req, new AbortController().signal);
    case 'close':
      await service?.close();
      setImmediate(() => process.exit(0));
      return null;
  }
}

process.on('message', (msg: Msg) => {
  handle(msg).then(
    (value) => process.send?.({ id: msg.id, ok: true, value }),
    (err: unknown) =>
      process.send?.({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
