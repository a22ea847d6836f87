/**
 * The backup uploads in flight in this coordinator, by VM id (docs/backups.md#the-backup-datastore):
 * the datastore's backup_cancel aborts the one of its VM, which cancels the ReceiveBackup call (the
 * backup server then removes what it wrote), and waits for it to end.
 */
interface Running {
  controller: AbortController;
  ended: Promise<void>;
}

const running = new Map<number, Running>();
/** How long a cancel waits for the aborted upload to wind down before answering anyway. */
const CANCEL_WAIT_MS = 60_000;

/** Runs `upload` registered under `vmId`; its signal aborts when the VM's backup is cancelled. */
export async function withRunningBackup<T>(
  vmId: number,
  upload: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let end = (): void => undefined;
  const entry: Running = { controller, ended: new Promise<void>((resolve) => (end = resolve)) };
  running.set(vmId, entry);
  try {
    return await upload(controller.signal);
  } finally {
    if (running.get(vmId) === entry) running.delete(vmId);
    end();
  }
}

/** Aborts VM `vmId`'s upload and waits for it to end; false when none was running. */
export async function cancelRunningBackup(vmId: number): Promise<boolean> {
  const entry = running.get(vmId);
  if (!entry) return false;
  entry.controller.abort(new Error(`backup of VM ${vmId} cancelled`));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([entry.ended, new Promise<void>((r) => (timer = setTimeout(r, CANCEL_WAIT_MS)))]);
  clearTimeout(timer);
  return true;
}
