import * as grpc from '@grpc/grpc-js';
import { AgentServiceService } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { REASON_METADATA_KEY, Reasons, StorageError, type Reason } from '../../../common/src/errors.js';
import { channelOptions, clientCredentials, type TlsMaterial } from '../../../common/src/tls.js';
import type { AgentEndpoint } from '../config.js';
import { keepaliveOptions, type Keepalive } from '../../../common/src/config/keepalive.js';

type Service = typeof AgentServiceService;
export type AgentMethod = keyof Service;
export type AgentRequest<M extends AgentMethod> = Parameters<Service[M]['requestSerialize']>[0];
export type AgentResponse<M extends AgentMethod> = ReturnType<Service[M]['responseDeserialize']>;

export interface CallOptions {
  deadlineMs: number;
  requestId: string;
  signal?: AbortSignal;
}

/**
 * One agent's gRPC channel (mutual TLS, server certificate checked against the agent's name)
 * and a typed unary call that turns gRPC failures into StorageErrors carrying the agent's reason.
 */
export class AgentClient {
  private readonly client: grpc.Client;

  constructor(
    readonly agent: AgentEndpoint,
    tls: TlsMaterial,
    /** Ping the agent while calls are open and fail them when it stops answering (see Keepalive). */
    keepalive?: Keepalive,
  ) {
    this.client = new grpc.Client(agent.endpoint, clientCredentials(tls), {
      ...channelOptions(agent.certName),
      ...(keepalive ? keepaliveOptions(keepalive) : {}),
    });
  }

  call<M extends AgentMethod>(
    method: M,
    request: AgentRequest<M>,
    opts: CallOptions,
  ): Promise<AgentResponse<M>> {
    const def = AgentServiceService[method];
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', opts.requestId);
    return new Promise((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        def.path,
        def.requestSerialize as (v: AgentRequest<M>) => Buffer,
        def.responseDeserialize as (b: Buffer) => AgentResponse<M>,
        request,
        metadata,
        { deadline: Date.now() + opts.deadlineMs },
        (err, response) => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (err) reject(this.toStorageError(method, err, opts.deadlineMs));
          else if (response === undefined)
            reject(new StorageError('INTERNAL', `agent ${this.agent.name}: empty reply to ${method}`));
          else resolve(response);
        },
      );
      const onAbort = (): void => call.cancel();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Resolves once the channel is connected, so that a call made right after an agent restarted
   * is not refused by a channel still waiting out its reconnect backoff; AGENT_UNAVAILABLE when
   * no connection is made within `deadlineMs` (or INTERNAL when `signal` aborts first).
   */
  ready(deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void =>
        reject(
          new StorageError('INTERNAL', `agent ${this.agent.name}: the wait for a connection was cancelled`),
        );
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.client.waitForReady(Date.now() + deadlineMs, (err) => {
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined || err === null) resolve();
        else
          reject(
            new StorageError(
              'AGENT_UNAVAILABLE',
              `agent ${this.agent.name} at ${this.agent.endpoint} is unreachable (no connection within ${deadlineMs} ms): is one-storage-agent running there?`,
              { cause: err },
            ),
          );
      });
    });
  }

  private toStorageError(method: string, err: grpc.ServiceError, deadlineMs: number): StorageError {
    const name = this.agent.name;
    const sent = err.metadata?.get(REASON_METADATA_KEY)[0];
    if (typeof sent === 'string' && sent in Reasons)
      return new StorageError(sent as Reason, err.details, { cause: err });
    switch (err.code) {
      case grpc.status.UNAVAILABLE:
        return new StorageError(
          'AGENT_UNAVAILABLE',
          `agent ${name} at ${this.agent.endpoint} is unreachable (${err.details}): is one-storage-agent running there?`,
          { cause: err },
        );
      case grpc.status.DEADLINE_EXCEEDED:
        return new StorageError(
          'DEADLINE_EXCEEDED',
          `agent ${name}: ${method} did not finish within ${deadlineMs} ms`,
          {
            cause: err,
          },
        );
      case grpc.status.CANCELLED:
        return new StorageError('CANCELLED', `agent ${name}: ${method} was cancelled`, { cause: err });
      default:
        return new StorageError('INTERNAL', `agent ${name}: ${method} failed: ${err.details}`, {
          cause: err,
        });
    }
  }

  close(): void {
    this.client.close();
  }
}
