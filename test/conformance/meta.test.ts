// Every RPC of the agent service has a describe block of its name in test/conformance: a new RPC
// without conformance tests fails here.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentServiceService } from '../../proto/gen/onestorage/agent/v1/agent.js';

const DIR = import.meta.dirname;

/** The names of the top-level describe blocks of every conformance test file. */
function describedNames(): Set<string> {
  const names = new Set<string>();
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.test.ts'))) {
    for (const m of readFileSync(join(DIR, file), 'utf8').matchAll(/^describe\('([A-Za-z]+)'/gm)) {
      if (m[1]) names.add(m[1]);
    }
  }
  return names;
}

describe('the conformance suite', () => {
  it('has a describe block named after every RPC of AgentService', () => {
    const rpcs = Object.values(AgentServiceService).map((m) => m.path.split('/').pop() ?? '');
    expect(rpcs.length).toBeGreaterThan(20);
    const described = describedNames();
    expect(rpcs.filter((rpc) => !described.has(rpc))).toEqual([]);
  });
});
