// The coordinator's retry policy is the contract's: each RPC's `option idempotency_level` in
// agent.proto, read here from the descriptors buf builds from the .proto itself.
import { execFileSync } from 'node:child_process';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema, MethodOptions_IdempotencyLevel as Level } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { AgentServiceService } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentMethod } from './agent-client.js';
import { idempotencyLevel, isRetriable } from './retry-policy.js';
import { retryWindowMs } from './agent-calls.js';
import { RECONNECT_MAX_BACKOFF_MS } from '../../../common/src/tls.js';

/** Every AgentService RPC with the idempotency level agent.proto gives it. */
function levelsInProto(): Map<string, Level> {
  const image = execFileSync('node_modules/.bin/buf', ['build', '-o', '-#format=binpb']);
  const set = fromBinary(FileDescriptorSetSchema, image);
  const file = set.file.find((f) => f.name === 'onestorage/agent/v1/agent.proto');
  const service = file?.service.find((s) => s.name === 'AgentService');
  if (!service) throw new Error('AgentService not found in the descriptors buf built');
  return new Map(
    service.method.map((m) => [m.name, m.options?.idempotencyLevel ?? Level.IDEMPOTENCY_UNKNOWN]),
  );
}

const methods = Object.keys(AgentServiceService) as AgentMethod[];

describe('retry policy', () => {
  it('retries exactly the RPCs agent.proto marks IDEMPOTENT or NO_SIDE_EFFECTS', () => {
    const inProto = levelsInProto();
    expect(inProto.size).toBe(methods.length);
    for (const method of methods) {
      const level = inProto.get(AgentServiceService[method].path.split('/').pop() ?? '');
      expect(level, method).toBeDefined();
      const expected =
        level === Level.IDEMPOTENT
          ? 'IDEMPOTENT'
          : level === Level.NO_SIDE_EFFECTS
            ? 'NO_SIDE_EFFECTS'
            : undefined;
      expect(idempotencyLevel(method), method).toBe(expected);
      expect(isRetriable(method), method).toBe(expected !== undefined);
    }
  });

  it('does not retry Receive and ReceiveBackup (a single-use ticket), CopyDiskLive (a repeat is ALREADY_EXISTS), ImportImage (a download, maybe with a single-use ticket) OpenBackupChain (a repeat merges the chain again), RestoreDisk and RestoreTpm (the staging file is used up)', () => {
    expect(methods.filter((m) => !isRetriable(m)).sort()).toEqual([
      'copyDiskLive',
      'importImage',
      'openBackupChain',
      'receive',
      'receiveBackup',
      'restoreDisk',
      'restoreTpm',
    ]);
  });

  it('retries CreateProbe, whose repeat finds the same probe, and the read-only RPCs', () => {
    expect(idempotencyLevel('createProbe')).toBe('IDEMPOTENT');
    expect(methods.filter((m) => idempotencyLevel(m) === 'NO_SIDE_EFFECTS').sort()).toEqual([
      'health',
      'hello',
      'imageInfo',
      'listBackup',
      'listJobs',
      'probeImageSource',
      'stat',
    ]);
  });
});

describe('retry window and channel reconnects', () => {
  it('a retried call outlasts the longest reconnect backoff of a channel (jitter included)', () => {
    expect(retryWindowMs()).toBeGreaterThan(RECONNECT_MAX_BACKOFF_MS * 1.2);
  });
});
