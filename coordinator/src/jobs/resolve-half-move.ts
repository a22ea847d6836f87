// A VM directory move (TM mv between hosts) that a stopped coordinator left half-done. mv copies the
// directory to the destination, checks it, then deletes the source (coordinator/src/actions/
// tm-local/mv.ts): stopped between the two, both copies exist. At restart the journal says how far
// the call got, and exactly one copy is kept:
// * the copy had been received and verified (its Receive or Copy step succeeded), or the source's
//   Delete had started: the move is rolled forward, as the call would have gone on: the monitoring
//   marker follows the directory, then the source is deleted;
// * otherwise the destination holds nothing of this call (the agents' cancel removed the partial
//   files): the source is the only copy, nothing to do.
// oned saw the call fail; its retry (onevm recover --retry) then finds the source gone and the
// destination present, which mv treats as done, or the source alone, which it moves again.
import { oneLine } from '../../../common/src/errors.js';
import { TM_DRIVER_SHARED } from '../../../common/src/drivers/driver-actions.js';
import type { AgentRegistry } from '../agents/agent-registry.js';
import type { CallRecord, StepRecord } from '../journal/journal.js';
import { diskIdOf, dirname, formatHostPath, parseHostPath, type HostPath } from '../actions/host-path.js';

interface Move {
  source: HostPath;
  destination: HostPath;
}

/** The move a call was, when it is a directory-level mv between two places; else undefined. */
export function moveOf(call: CallRecord): Move | undefined {
  if (call.kind !== 'tm' || baseAction(call.action) !== 'mv' || !Array.isArray(call.args)) return undefined;
  const [src, dst] = call.args as unknown[];
  if (typeof src !== 'string' || typeof dst !== 'string') return undefined;
  try {
    const source = parseHostPath(src, 'SOURCE');
    const destination = parseHostPath(dst, 'DESTINATION');
    // A disk-level mv moves nothing (the directory-level call that follows does).
    if (diskIdOf(source.path) !== undefined) return undefined;
    return { source, destination };
  } catch {
    return undefined;
  }
}

/** Whether the journal shows the copy in place at the destination, or the source's delete begun. */
export function copiedOrDeleting(move: Move, steps: readonly StepRecord[], agents: AgentRegistry): boolean {
  const on = (s: StepRecord, hp: HostPath): boolean => agents.canonical(s.host) === agents.canonical(hp.host);
  const argOf = (s: StepRecord, key: string): unknown =>
    typeof s.args === 'object' && s.args !== null ? (s.args as Record<string, unknown>)[key] : undefined;
  return steps.some(
    (s) =>
      ((s.rpc === 'receive' || s.rpc === 'copy') &&
        s.outcome === 'success' &&
        on(s, move.destination) &&
        argOf(s, 'destination') === move.destination.path) ||
      (s.rpc === 'delete' && on(s, move.source) && argOf(s, 'path') === move.source.path),
  );
}

/**
 * Resolves the half-done move `call` left (see the top of this file); says what it did, or
 * undefined when the call was not a move or there was nothing to resolve.
 */
export async function resolveHalfMove(
  call: CallRecord,
  steps: readonly StepRecord[],
  agents: AgentRegistry,
  deadlineMs: number,
): Promise<string | undefined> {
  const move = moveOf(call);
  if (!move || !copiedOrDeleting(move, steps, agents)) return undefined;
  const { source, destination } = move;
  const opts = { deadlineMs, requestId: `recover-${call.requestId}` };
  try {
    const dst = await agents
      .get(destination.host)
      .call('stat', { path: destination.path, follow: false }, opts);
    const src = await agents.get(source.host).call('stat', { path: source.path, follow: false }, opts);
    if (!dst.exists) {
      return src.exists
        ? `mv not rolled forward: ${formatHostPath(destination)} is gone, ${formatHostPath(source)} kept`
        : `mv: neither ${formatHostPath(source)} nor ${formatHostPath(destination)} exists`;
    }
    if (!src.exists) return `mv already complete: only ${formatHostPath(destination)} exists`;
    const marker = `${dirname(source.path)}/.monitor`;
    const driver = systemTm(call);
    const monitored = await agents.get(source.host).call('stat', { path: marker, follow: false }, opts);
    if (monitored.exists && driver !== TM_DRIVER_SHARED) {
      await agents
        .get(destination.host)
        .call('setMonitorMarker', { datastoreDir: dirname(destination.path), driver }, opts);
    }
    await agents.get(source.host).call('delete', { path: source.path }, opts);
    return `mv rolled forward: ${formatHostPath(destination)} was copied and verified before the stop; ${formatHostPath(source)} deleted, one copy remains`;
  } catch (err) {
    return `mv not resolved (${oneLine(err instanceof Error ? err.message : String(err))}): check ${formatHostPath(source)} and ${formatHostPath(destination)}`;
  }
}

/** `mv.ssh` → `mv`: the action without the mixed-mode suffix. */
function baseAction(action: string): string {
  const dot = action.indexOf('.');
  return dot > 0 ? action.slice(0, dot) : action;
}

/** The system datastore's TM (as monitoring-marker.ts's systemTm): the mixed-mode suffix, else the driver. */
function systemTm(call: CallRecord): string {
  const dot = call.action.lastIndexOf('.');
  return dot > 0 ? call.action.slice(dot + 1) : call.driver;
}
