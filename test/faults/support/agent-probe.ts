import type { Stack } from '../../../cli/src/demo/stack.js';
import { pkiFiles } from '../../../common/src/pki/pki.js';
import { loadTls } from '../../../common/src/tls.js';
import { AgentClient } from '../../../coordinator/src/agents/agent-client.js';

const POLL_MS = 20;
const WAIT_MS = 30_000;
const CALL_MS = 2_000;

/**
 * Asks a stack's agents what they are doing (ListJobs, with the coordinator's certificate), through
 * Stack.agentEndpoint: in network mode a relay inside each agent's namespace, so a probe never
 * crosses a cut link.
 */
export class AgentProbe {
  private readonly clients = new Map<string, AgentClient>();

  constructor(private readonly stack: Stack) {}

  /** Waits until `host`'s Receive has moved at least `fraction` of its bytes. */
  async receivedAtLeast(host: string, fraction: number): Promise<void> {
    await this.until(`${host}'s transfer reaching ${fraction}`, host, (jobs) =>
      jobs.some((j) => j.method === 'Receive' && j.totalBytes > 0 && j.doneBytes >= fraction * j.totalBytes),
    );
  }

  /** Waits until none of `hosts` runs a job (the interrupted transfer has wound down everywhere). */
  async idle(hosts: readonly string[]): Promise<void> {
    for (const host of hosts) await this.until(`${host} idle`, host, (jobs) => jobs.length === 0);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private async until(
    what: string,
    host: string,
    done: (jobs: Array<{ method: string; doneBytes: number; totalBytes: number }>) => boolean,
  ): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    let last: string;
    for (;;) {
      try {
        const { jobs } = await this.client(host).call(
          'listJobs',
          { requestId: '' },
          { deadlineMs: CALL_MS, requestId: 'fault-probe' },
        );
        if (done(jobs)) return;
        last = JSON.stringify(jobs);
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`waited ${WAIT_MS} ms for ${what}; last: ${last}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private client(host: string): AgentClient {
    let c = this.clients.get(host);
    if (!c) {
      c = new AgentClient(
        { name: host, endpoint: this.stack.agentEndpoint(host), certName: host },
        loadTls(pkiFiles(this.stack.pkiDir, 'coordinator'), 'fault probe'),
      );
      this.clients.set(host, c);
    }
    return c;
  }
}
