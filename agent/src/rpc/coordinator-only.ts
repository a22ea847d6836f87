import * as grpc from '@grpc/grpc-js';
import {
  identityOfCertificate,
  pkiIssueCommand,
  type CertificateIdentity,
} from '../../../common/src/certificate-role.js';
import { REASON_METADATA_KEY, Reasons, oneLine } from '../../../common/src/errors.js';

/**
 * Every RPC of the agent's gRPC service is a control RPC, so every call must come from a
 * coordinator certificate (subject OU one-storage-coordinator, signed by the cloud's CA). Another
 * agent's certificate, however valid, is refused: agents reach each other only over the data path,
 * with a ticket the coordinator had issued for them. Checked here, before any handler sees the
 * request, so a new RPC is covered without anyone remembering to.
 */
export function coordinatorOnlyInterceptor(agentName: string): grpc.ServerInterceptor {
  return (methodDescriptor, call) => {
    const method = methodDescriptor.path.slice(methodDescriptor.path.lastIndexOf('/') + 1);
    let refused = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              const refusal = refusalFor(call, agentName, method);
              if (refusal === undefined) {
                nextMetadata(metadata);
                return;
              }
              // The handler never runs: it never sees the metadata, the request or the half-close
              // (grpc-js would hold them behind the metadata anyway; dropping them says so here).
              refused = true;
              const trailer = new grpc.Metadata();
              trailer.set(REASON_METADATA_KEY, 'CALLER_NOT_COORDINATOR');
              call.sendStatus({
                code: Reasons.CALLER_NOT_COORDINATOR,
                details: refusal,
                metadata: trailer,
              });
            })
            .withOnReceiveMessage((message, nextMessage) => {
              if (!refused) nextMessage(message);
            })
            .withOnReceiveHalfClose((nextHalfClose) => {
              if (!refused) nextHalfClose();
            })
            .build(),
        ),
    });
  };
}

/** Why the caller may not make this call, in one line; undefined when it may. */
function refusalFor(
  call: grpc.ServerInterceptingCallInterface,
  agentName: string,
  method: string,
): string | undefined {
  const identity = callerIdentity(call);
  if (identity?.role === 'coordinator') return undefined;
  const refused = `agent ${agentName}: ${method} refused: only the coordinator may call an agent's control RPCs`;
  if (identity === undefined) return `${refused}, and the caller's certificate cannot be read`;
  const who = `the caller's certificate "${identity.name}"`;
  switch (identity.role) {
    case 'agent':
      return oneLine(
        `${refused}; ${who} has the agent role (agents reach each other only over the data path, with a ticket)`,
      );
    case 'conflicting':
      return oneLine(`${refused}; ${who} carries both roles, so it is trusted for neither`);
    case 'none':
      // A deployment from before roles: say exactly how to fix it.
      return oneLine(
        `${refused}; ${who} carries no one-storage role (issued before roles): reissue the coordinator's certificate with "${pkiIssueCommand('coordinator', identity.name, '<pki dir>', true)}" and restart the coordinator`,
      );
  }
}

/** The identity of the client certificate; mutual TLS guarantees one signed by the cloud's CA. */
function callerIdentity(call: grpc.ServerInterceptingCallInterface): CertificateIdentity | undefined {
  const raw = call.getAuthContext().sslPeerCertificate?.raw;
  if (raw === undefined) return undefined;
  try {
    return identityOfCertificate(raw);
  } catch {
    return undefined;
  }
}
