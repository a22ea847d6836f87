import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REASON_METADATA_KEY, StorageError } from '../../../common/src/errors.js';
import { EventEmitter } from 'node:events';
import { JobRegistry } from '../jobs/job-registry.js';
import type { AgentContext } from './context.js';
import { adaptHandler, toServiceError } from './error-adapter.js';

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('toServiceError', () => {
  it('keeps a StorageError code and message and adds x-reason', () => {
    const { log } = capture();
    const message =
      'copy host01:/var/lib/one/datastores/0/42/disk.0: no space left on the destination filesystem';
    const status = toServiceError(new StorageError('NO_SPACE', message), 'host01', log);
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toBe(message);
    expect(status.metadata?.get(REASON_METADATA_KEY)).toEqual(['NO_SPACE']);
  });

  it('turns anything else into INTERNAL with a generic message and logs the stack', () => {
    const { log, lines } = capture();
    const status = toServiceError(new TypeError('secret detail'), 'host01', log);
    expect(status.code).toBe(grpc.status.INTERNAL);
    expect(status.details).toBe('internal error in agent host01; see its log');
    expect(status.metadata?.get(REASON_METADATA_KEY)).toEqual(['INTERNAL']);
    const logged = lines.find((l) => l['msg'] === 'unexpected error') as
      { err?: { stack?: string } } | undefined;
    expect(logged?.err?.stack).toContain('secret detail');
  });
});

describe('adaptHandler', () => {
  it('a call whose caller went away fails as CANCELLED, whatever the aborted work threw, and logs no bug', async () => {
    const { log, lines } = capture();
    const agent = { name: 'host01', jobs: new JobRegistry() } as unknown as AgentContext;
    const call = Object.assign(new EventEmitter(), { metadata: new grpc.Metadata(), request: {} });
    const unary = adaptHandler<object, object>(agent, log, 'SetMonitorMarker', (_a, _r, ctx) => {
      // The work throws what an aborted fs call throws (an AbortError), once the caller is gone.
      return new Promise((_resolve, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))),
      );
    });
    const status = new Promise<grpc.ServiceError | null>((resolve) =>
      unary(call as never, (err) => resolve(err as grpc.ServiceError | null)),
    );
    call.emit('cancelled');
    const err = await status;
    expect(err?.code).toBe(grpc.status.CANCELLED);
    expect(err?.metadata?.get(REASON_METADATA_KEY)).toEqual(['CANCELLED']);
    expect(err?.details).toBe(
      'host01: SetMonitorMarker stopped: its caller went away or its deadline passed',
    );
    expect(lines.filter((l) => l['msg'] === 'unexpected error')).toEqual([]);
  });
});
