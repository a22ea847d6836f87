import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../common/src/log.js';
import { requestIdOf } from './request-id.js';

/**
 * Logs every RPC exactly once, when its status is sent (or when the caller cancels): method,
 * duration, status code, request id and the caller's certificate name. Errors log at warn so a
 * failing cloud is visible without debug logs; the message says why.
 */
export function loggingInterceptor(logger: Logger): grpc.ServerInterceptor {
  return (methodDescriptor, call) => {
    const method = methodDescriptor.path.slice(methodDescriptor.path.lastIndexOf('/') + 1);
    const started = performance.now();
    let requestId: string | undefined;
    let logged = false;
    const record = (code: grpc.status, details?: string): void => {
      if (logged) return;
      logged = true;
      const peer = peerName(call);
      const entry = {
        method,
        code: grpc.status[code] ?? String(code),
        ms: Math.round(performance.now() - started),
        ...(requestId ? { requestId } : {}),
        ...(peer ? { peer } : {}),
        ...(code !== grpc.status.OK && details ? { error: details } : {}),
      };
      if (code === grpc.status.OK) logger.info(entry, 'rpc');
      else logger.warn(entry, 'rpc');
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              requestId = requestIdOf(metadata);
              nextMetadata(metadata);
            })
            .withOnCancel(() => record(grpc.status.CANCELLED, 'cancelled by the caller'))
            .build(),
        ),
      sendStatus: (status, next) => {
        record(status.code, status.details);
        next(status);
      },
    });
  };
}

/** The CN of the client certificate (mutual TLS guarantees there is one). */
function peerName(call: grpc.ServerInterceptingCallInterface): string | undefined {
  const cn = call.getAuthContext().sslPeerCertificate?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}
