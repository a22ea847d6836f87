// `one-storage doctor [--config FILE] [--host H] [--oned-conf FILE] [--vmm-execrc FILE]
// [--timeout-ms N] [--json]`: without --host the front-end's checks, with it one agent's. Exit
// codes: 0 no FAIL (warnings allowed), 1 a FAIL, 2 a usage error (docs/operations.md#doctor).
import { fileURLToPath } from 'node:url';
import { StorageError } from '../../../common/src/errors.js';
import { loadTls } from '../../../common/src/tls.js';
import { loadCoordinatorConfig } from '../../../coordinator/src/config.js';
import { RUNTIME_FILE } from '../../../shims/src/install.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Output } from '../status/status-command.js';
import { checkLines, fail, type DoctorCheck } from './doctor-check.js';
import { frontendChecks } from './frontend-checks.js';
import { hostChecks } from './host-checks.js';

export const DEFAULT_ONED_CONF = '/etc/one/oned.conf';
export const DEFAULT_VMM_EXECRC = '/etc/one/vmm_exec/vmm_execrc';

export interface DoctorOptions {
  config: string;
  host?: string;
  onedConf: string;
  vmmExecrc: string;
  timeoutMs: number;
  json: boolean;
}

/** This version's shim runtime: installShims' default, beside install.js in the compiled tree. */
export function ourRuntimePath(): string {
  return fileURLToPath(new URL(`../../../shims/src/${RUNTIME_FILE}`, import.meta.url));
}

export async function runDoctor(opts: DoctorOptions, out: Output): Promise<number> {
  let checks: DoctorCheck[];
  if (opts.host === undefined) {
    checks = await frontendChecks({
      config: opts.config,
      onedConf: opts.onedConf,
      vmmExecrc: opts.vmmExecrc,
      runtimePath: ourRuntimePath(),
    });
  } else {
    let config;
    let tls;
    try {
      config = loadCoordinatorConfig(opts.config);
      tls = loadTls(config.tls, config.source);
    } catch (err) {
      if (err instanceof StorageError && err.reason === 'CONFIG_INVALID') {
        out.error(`one-storage: ${err.message}`);
        return EXIT_USAGE;
      }
      throw err;
    }
    if (!config.agents.has(opts.host) && !config.frontendAliases.includes(opts.host)) {
      out.error(
        `one-storage: doctor: no agent named ${opts.host} in ${config.source} (agents: ${[...config.agents.keys()].join(', ')})`,
      );
      return EXIT_USAGE;
    }
    checks = await hostChecks(config, tls, opts.host, opts.timeoutMs).catch((err: unknown) => [
      fail('agent', err instanceof Error ? err.message : String(err), `see the agent's log on ${opts.host}`),
    ]);
  }
  const failed = checks.some((c) => c.level === 'fail');
  const code = failed ? EXIT_FAILED : EXIT_OK;
  if (opts.json) out.print(JSON.stringify({ ok: !failed, exitCode: code, checks }, null, 2));
  else for (const c of checks) for (const line of checkLines(c)) out.print(line);
  return code;
}
