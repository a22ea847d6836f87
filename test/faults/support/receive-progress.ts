// Waits for a point of a running transfer: the receiving agent's Receive job, read over its real
// gRPC API (ListJobs) with the coordinator's certificate, as the coordinator's progress poller does.
import type { Stack } from '../../../cli/src/demo/stack.js';
import { pkiFiles } from '../../../common/src/pki/pki.js';
import { loadTls } from '../../../common/src/tls.js';
import { AgentClient } from '../../../coordinator/src/agents/agent-client.js';

const POLL_MS = 20;

/** Resolves once `receiver`'s Receive has moved at least `fraction` of its bytes; fails after `waitMs`. */
export function receivedAtLeast(
  stack: Stack,
  receiver: string,
  fraction: number,
  waitMs = 30_000,
): Promise<void> {
  return jobAtLeast(stack, receiver, 'Receive', fraction, waitMs);
}

/** Resolves once `host` runs a `method` job that has moved at least `fraction` of its bytes. */
export async function jobAtLeast(
  stack: Stack,
  host: string,
  method: string,
  fraction: number,
  waitMs = 30_000,
): Promise<void> {
  const client = new AgentClient(
    { name: host, endpoint: `127.0.0.1:${stack.agentPort(host)}`, certName: host },
    loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'fault'),
  );
  try {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const { jobs } = await client.call(
        'listJobs',
        { requestId: '' },
        { deadlineMs: 5_000, requestId: 'fault' },
      );
      const receive = jobs.find((j) => j.method === method && j.totalBytes > 0);
      if (receive && receive.doneBytes >= fraction * receive.totalBytes) return;
      if (performance.now() > deadline)
        throw new Error(`no ${method} on ${host} reached ${fraction}: ${JSON.stringify(jobs)}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    client.close();
  }
}
