// `one-storage status [--config FILE] [--agent NAME]... [--timeout-ms N] [--json]`: the fleet view.
// One line per agent (and one for the coordinator unless --agent narrows it), `NAME STATE what`,
// STATE ok, WARNING or FAILED; --json prints the same as one object. Exit codes: 0 nothing FAILED
// (warnings allowed), 1 something FAILED, 2 a usage or config error (docs/operations.md#status).
import { StorageError } from '../../../common/src/errors.js';
import { loadTls } from '../../../common/src/tls.js';
import { loadCoordinatorConfig } from '../../../coordinator/src/config.js';
import type { AgentReport } from './agent-report.js';
import { agentStatuses } from './agent-status.js';
import { coordinatorStatus } from './coordinator-status.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface StatusOptions {
  config: string;
  agents: readonly string[];
  timeoutMs: number;
  json: boolean;
}

const WORDS = { ok: 'ok', warning: 'WARNING', failed: 'FAILED' } as const;

/** Where the command writes: its report, and a usage or config error. */
export interface Output {
  print(line: string): void;
  error(line: string): void;
}

/** Runs the checks and prints them; resolves to the exit code. */
export async function runStatus(opts: StatusOptions, out: Output): Promise<number> {
  let reports: AgentReport[];
  try {
    const config = loadCoordinatorConfig(opts.config);
    const tls = loadTls(config.tls, config.source);
    const agents = agentStatuses(config, tls, opts.agents, opts.timeoutMs);
    // --agent is the rollout's question about one host: the coordinator is left out of it.
    const coordinator = opts.agents.length > 0 ? [] : [await coordinatorStatus(config, tls)];
    reports = [...coordinator, ...(await agents)];
  } catch (err) {
    if (err instanceof StorageError && err.reason === 'CONFIG_INVALID') {
      out.error(`one-storage: ${err.message}`);
      return EXIT_USAGE;
    }
    throw err;
  }
  const failed = reports.some((r) => r.state === 'failed');
  const code = failed ? EXIT_FAILED : EXIT_OK;
  if (opts.json) {
    const [first, ...rest] = reports;
    const withCoordinator = first?.name === 'coordinator' && opts.agents.length === 0;
    out.print(
      JSON.stringify(
        {
          ok: !failed,
          exitCode: code,
          ...(withCoordinator ? { coordinator: first } : {}),
          agents: withCoordinator ? rest : reports,
        },
        null,
        2,
      ),
    );
  } else {
    for (const r of reports) out.print(statusLine(r));
  }
  return code;
}

/** `host01 WARNING certificate expires in 10 days (2026-12-16); version 0.1.0; ...` */
export function statusLine(r: AgentReport): string {
  return `${r.name} ${WORDS[r.state]} ${[...r.findings.map((f) => f.text), ...r.facts].join('; ')}`;
}
