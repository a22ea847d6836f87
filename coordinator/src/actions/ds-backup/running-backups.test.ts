import { describe, expect, it } from 'vitest';
import { cancelRunningBackup, withRunningBackup } from './running-backups.js';

describe('running backups', () => {
  it('a cancel aborts that VM upload only, and answers once it has ended', async () => {
    let ended = false;
    const other = withRunningBackup(
      2,
      (signal) => new Promise<boolean>((r) => setImmediate(() => r(signal.aborted))),
    );
    const upload = withRunningBackup(
      1,
      (signal) =>
        new Promise<string>((_resolve, reject) =>
          signal.addEventListener('abort', () =>
            setImmediate(() => ((ended = true), reject(new Error('cancelled')))),
          ),
        ),
    );
    upload.catch(() => undefined);
    expect(await cancelRunningBackup(1)).toBe(true);
    expect(ended).toBe(true);
    await expect(upload).rejects.toThrow('cancelled');
    expect(await other).toBe(false);
  });

  it('nothing to cancel once an upload ended, or for a VM with none', async () => {
    await withRunningBackup(3, () => Promise.resolve());
    expect(await cancelRunningBackup(3)).toBe(false);
    expect(await cancelRunningBackup(4)).toBe(false);
  });
});
