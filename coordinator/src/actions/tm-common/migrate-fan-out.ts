import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionContext } from '../action-context.js';
import { findHandler } from '../dispatch.js';
import type { MigrateCall } from './migrate-call.js';

/** TM driver names as oned.conf lists them; anything else in the XML is not a directory name we run. */
const TM_NAME = /^[a-z0-9_]+$/;
/** OpenNebula does not check the nested hooks' results; a stuck one must still not hold the call. */
const NESTED_HOOK_TIMEOUT_MS = 5 * 60_000;

/**
 * OpenNebula's migrate_other (docs/opennebula/tm-actions.md#migrate-hook-fan-out): the system TM's pre/postmigrate runs the same hook of
 * every other TM driver the VM's disks use, with the same arguments plus our driver name (which
 * marks the call as nested) and the same base64 VM XML on stdin. Our own drivers are called in
 * process; any other driver's script is run from oned's remotes directory. As in OpenNebula, a
 * nested hook's failure does not fail the migration: it is reported as an INFO line.
 */
export async function fanOutMigrateHook(ctx: ActionContext, call: MigrateCall): Promise<void> {
  const hook = ctx.action.split('.')[0] ?? ctx.action;
  const others = new Set(
    call.vm.disks.map((d) => d.tmMad).filter((tm): tm is string => !!tm && tm !== ctx.driver),
  );
  for (const tm of others) {
    if (!TM_NAME.test(tm)) {
      ctx.info(`${hook}: skipping disk TM "${tm}": not a driver name`);
      continue;
    }
    const args = [...ctx.args.slice(0, 5), ctx.driver];
    const ours = findHandler('tm', tm, hook);
    if (ours) {
      await ours({ ...ctx, driver: tm, args }).catch((err: unknown) =>
        ctx.info(`${hook}: nested ${tm}/${hook} failed: ${err instanceof Error ? err.message : String(err)}`),
      );
      continue;
    }
    const script = join(ctx.config.remotesDir, 'tm', tm, hook);
    if (!existsSync(script)) {
      ctx.info(`${hook}: no ${script}; nothing to run for TM ${tm}`);
      continue;
    }
    const code = await runScript(script, args, ctx.stdin, ctx.signal);
    ctx.info(`${hook}: ran ${tm}/${hook} for VM ${call.vmId}: exit ${code}`);
  }
}

function runScript(file: string, args: string[], stdin: Buffer, signal: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'ignore', 'ignore'],
      timeout: NESTED_HOOK_TIMEOUT_MS,
      signal,
      env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
    });
    child.once('error', () => resolve(-1));
    child.once('close', (code) => resolve(code ?? -1));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}
