// The journal's rows as SQLite returns them, and the records the Journal hands out.
import type { CallRecord, CancelledBy, Outcome, StepRecord } from './journal.js';

export interface CallRow {
  request_id: string;
  kind: string;
  driver: string;
  action: string;
  args: string;
  hosts: string | null;
  vm_id: number | null;
  started_at: number;
  ended_at: number | null;
  outcome: Outcome;
  exit_code: number | null;
  error: string | null;
  bytes: number | null;
  cancelled_by: CancelledBy | null;
  interrupted_at: number | null;
}

export interface StepRow {
  id: number;
  request_id: string;
  host: string;
  rpc: string;
  args: string;
  started_at: number;
  ended_at: number | null;
  outcome: Outcome;
  error: string | null;
  bytes: number | null;
  total: number | null;
  rate: number | null;
  phase: string | null;
  progress_at: number | null;
}

export function toCall(row: CallRow): CallRecord {
  return {
    requestId: row.request_id,
    kind: row.kind,
    driver: row.driver,
    action: row.action,
    args: JSON.parse(row.args) as unknown,
    hosts: row.hosts === null ? undefined : (JSON.parse(row.hosts) as string[]),
    vmId: row.vm_id ?? undefined,
    startedAt: row.started_at,
    endedAt: row.ended_at ?? undefined,
    outcome: row.outcome,
    exitCode: row.exit_code ?? undefined,
    error: row.error ?? undefined,
    bytes: row.bytes ?? undefined,
    cancelledBy: row.cancelled_by ?? undefined,
    interruptedAt: row.interrupted_at ?? undefined,
  };
}

export function toStep(row: StepRow): StepRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    host: row.host,
    rpc: row.rpc,
    args: JSON.parse(row.args) as unknown,
    startedAt: row.started_at,
    endedAt: row.ended_at ?? undefined,
    outcome: row.outcome,
    error: row.error ?? undefined,
    bytes: row.bytes ?? undefined,
    total: row.total ?? undefined,
    rate: row.rate ?? undefined,
    phase: row.phase ?? undefined,
    progressAt: row.progress_at ?? undefined,
  };
}
