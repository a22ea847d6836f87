import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { StorageError } from './errors.js';

/** The PEM files of one node: the cloud's CA, and this node's certificate and key. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** The same files, loaded once at start-up. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function loadTls(files: TlsFiles, source: string): TlsMaterial {
  const read = (key: keyof TlsFiles): Buffer => {
    try {
      return readFileSync(files[key]);
    } catch (err) {
      throw new StorageError(
        'CONFIG_INVALID',
        `config ${source}: tls.${key}: cannot read ${files[key]} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key') };
}

/** gRPC server credentials that refuse any client without a certificate signed by our CA. */
export function serverCredentials(tls: TlsMaterial): grpc.ServerCredentials {
  const requireClientCertificate = true;
  return grpc.ServerCredentials.createSsl(
    tls.ca,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    requireClientCertificate,
  );
}

/** gRPC client credentials presenting our certificate and trusting only our CA. */
export function clientCredentials(tls: TlsMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
}

/**
 * Channel options so the server's certificate is checked against the peer's OpenNebula hostname
 * (its certificate name), whatever address we dial: agents are often reached by IP.
 */
export function channelOptions(peerName: string): grpc.ChannelOptions {
  return {
    'grpc.ssl_target_name_override': peerName,
    'grpc.default_authority': peerName,
    'grpc.initial_reconnect_backoff_ms': RECONNECT_FIRST_BACKOFF_MS,
    'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_BACKOFF_MS,
  };
}

/**
 * How long a channel waits between attempts to reconnect to a peer that went away. grpc-js's own
 * default grows to two minutes, and while it waits every call fails at once with the last
 * connection error: an agent that restarts would stay "unreachable" to the coordinator long after
 * it is back. Kept below the coordinator's retry window (coordinator/src/agents/agent-calls.ts),
 * jitter (±20 %) included, so a retried call sees the agent again.
 */
export const RECONNECT_FIRST_BACKOFF_MS = 100;
export const RECONNECT_MAX_BACKOFF_MS = 800;
