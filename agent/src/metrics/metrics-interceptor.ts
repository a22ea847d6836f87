import * as grpc from '@grpc/grpc-js';
import { REASON_METADATA_KEY } from '../../../common/src/errors.js';
import { AgentServiceService } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentMetrics, PathKind } from './agent-metrics.js';

/** The service's own method paths: any other path is labelled `unknown` (bounded labels). */
const KNOWN_PATHS = new Set<string>(Object.values(AgentServiceService).map((d) => d.path));
const UNKNOWN_METHOD = 'unknown';

/** The RPCs whose response says how many bytes they moved: which field, and what path it was. */
const BYTES_OF: Readonly<Record<string, { field: string; kind: PathKind }>> = {
  Receive: { field: 'bytes', kind: 'transfer_received' },
  Copy: { field: 'bytes', kind: 'local' },
  ImportImage: { field: 'fetchedBytes', kind: 'import' },
  ReceiveBackup: { field: 'bytes', kind: 'backup_received' },
};

/**
 * Times every RPC once, when its status is sent or the caller cancels, labelled by method, gRPC
 * code and the `x-reason` the error adapter set; counts the bytes a successful call's response
 * reports. Beside the logging interceptor, so it sees the calls the coordinator-only check refuses.
 */
export function metricsInterceptor(metrics: AgentMetrics): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const known = KNOWN_PATHS.has(descriptor.path);
    const method = known ? descriptor.path.slice(descriptor.path.lastIndexOf('/') + 1) : UNKNOWN_METHOD;
    const started = performance.now();
    let response: unknown;
    let recorded = false;
    const record = (code: grpc.status, reason: string | undefined): void => {
      if (recorded) return;
      recorded = true;
      metrics.rpcServed(method, grpc.status[code] ?? String(code), reason, started);
      const counted = BYTES_OF[method];
      if (code === grpc.status.OK && counted && typeof response === 'object' && response !== null) {
        const bytes = (response as Record<string, unknown>)[counted.field];
        if (typeof bytes === 'number') metrics.moved(counted.kind, bytes);
      }
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnCancel(() => record(grpc.status.CANCELLED, undefined))
            .build(),
        ),
      sendMessage: (message, next) => {
        response = message;
        next(message);
      },
      sendStatus: (status, next) => {
        const reason = status.metadata?.get(REASON_METADATA_KEY)[0];
        record(status.code, typeof reason === 'string' ? reason : undefined);
        next(status);
      },
    });
  };
}
