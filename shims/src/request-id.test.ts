import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// The shim runtime is CommonJS (.cts), which the test runner does not compile: test the build output
// (`npm test` builds first), typed from the source.
const { newRequestId } = createRequire(import.meta.url)(
  '../../dist/shims/src/request-id.cjs',
) as typeof import('./request-id.cjs');

describe('newRequestId', () => {
  it('is a version 4, RFC variant UUID', () => {
    expect(newRequestId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newRequestId()));
    expect(ids.size).toBe(1000);
  });
});
