import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ShimEvent, ShimReply, ShimRequest } from '../../proto/gen/onestorage/shim/v1/shim.js';

// The shim runtime is CommonJS (.cts), which the test runner does not compile: test the build output
// (`npm test` builds first), typed from the source.
const { decodeShimEvent, encodeShimRequest, ShimDecodeError } = createRequire(import.meta.url)(
  '../../dist/shims/src/shim-codec.cjs',
) as typeof import('./shim-codec.cjs');

// The shim's hand-written codec must agree with the generated one byte for byte: the coordinator
// decodes with the generated code.

const request = (overrides: Partial<ShimRequest>): ShimRequest => ({
  ...ShimRequest.create(),
  ...overrides,
});

describe('encodeShimRequest', () => {
  it.each([
    { name: 'an empty request', req: request({}) },
    {
      name: 'a TM call',
      req: request({
        kind: 'tm',
        driver: 'grpc_qcow2',
        action: 'clone.ssh',
        args: ['fe:/var/lib/one/datastores/1/abc', 'node1:/var/lib/one/datastores/0/7/disk.0', '7', '1'],
        requestId: '0f8fad5b-d9cb-469f-a165-70867728950e',
        pid: 4242,
      }),
    },
    { name: 'empty and unicode arguments', req: request({ args: ['', 'é ü 日本', '', 'a\nb'] }) },
    { name: 'binary stdin', req: request({ kind: 'datastore', stdin: Buffer.from([0, 1, 2, 255, 254, 0]) }) },
    { name: 'a large stdin', req: request({ stdin: Buffer.alloc(20_000, 0x41) }) },
    { name: 'the largest pid', req: request({ pid: 2 ** 31 - 1 }) },
    { name: 'a negative pid', req: request({ pid: -5 }) },
  ])('encodes $name as the generated encoder does', ({ req }) => {
    const ours = encodeShimRequest(req);
    expect(Buffer.from(ours).equals(Buffer.from(ShimRequest.encode(req).finish()))).toBe(true);
    expect(ShimRequest.decode(ours)).toEqual(req);
  });
});

describe('decodeShimEvent', () => {
  const reply = (overrides: Partial<ShimReply>): ShimReply => ({ ...ShimReply.create(), ...overrides });
  it.each([
    { name: 'an empty event', event: {} },
    { name: 'a log line', event: { log: { line: 'INFO: clone: copying 10 GiB' } } },
    { name: 'an empty log line', event: { log: { line: '' } } },
    { name: 'a success', event: { reply: reply({ stdout: 'SOURCE qcow2', exitCode: 0 }) } },
    { name: 'an empty reply', event: { reply: reply({}) } },
    {
      name: 'a failure',
      event: {
        reply: reply({ stderr: ['INFO: a', 'ERROR: b', 'could not copy: host1:/x: no space'], exitCode: 1 }),
      },
    },
    { name: 'a multi-line unicode stdout', event: { reply: reply({ stdout: 'é\nü\n日本\n', exitCode: 0 }) } },
    { name: 'a large exit code', event: { reply: reply({ exitCode: 255 }) } },
    { name: 'a negative exit code', event: { reply: reply({ exitCode: -1 }) } },
    { name: 'the smallest int32 exit code', event: { reply: reply({ exitCode: -(2 ** 31) }) } },
    { name: 'the largest int32 exit code', event: { reply: reply({ exitCode: 2 ** 31 - 1 }) } },
  ])('decodes $name as the generated decoder does', ({ event }) => {
    const wire = ShimEvent.encode(event as ShimEvent).finish();
    expect(decodeShimEvent(wire)).toEqual(ShimEvent.decode(wire));
  });

  it('skips fields it does not know, of every wire type', () => {
    const known = Buffer.from(ShimEvent.encode({ log: { line: 'x' } }).finish());
    const unknown = Buffer.from([
      (9 << 3) | 0,
      0x96,
      0x01, // varint
      (10 << 3) | 1,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8, // fixed64
      (11 << 3) | 2,
      2,
      0xaa,
      0xbb, // length-delimited
      (12 << 3) | 5,
      1,
      2,
      3,
      4, // fixed32
    ]);
    expect(decodeShimEvent(Buffer.concat([unknown, known]))).toEqual({ log: { line: 'x' } });
  });

  it.each([
    { name: 'a truncated length', wire: [0x0a, 0x05, 0x0a] },
    { name: 'a truncated varint', wire: [0x12, 0x02, 0x18, 0x80] },
    { name: 'field number 0', wire: [0x00, 0x01] },
    { name: 'an unsupported wire type', wire: [0x0f] },
    {
      name: 'an overlong varint',
      wire: [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    },
  ])('rejects $name', ({ wire }) => {
    expect(() => decodeShimEvent(Uint8Array.from(wire))).toThrow(ShimDecodeError);
  });
});
