// One host's wall clock, moved at will: libfaketime preloaded into that host's agent (and the tools
// it runs), reading its offset from a file on every clock call, so writing the file jumps the clock
// of a running process. The monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC), as a real
// jump of the wall clock (settimeofday, an NTP step) leaves CLOCK_MONOTONIC alone. The file is
// replaced atomically: the library never reads half an offset.
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../../../common/src/files/atomic-file.js';
import { join } from 'node:path';

/** Where Debian's libfaketime package puts the library (scripts/install-deps.sh installs it). */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

export class FakedClock {
  private constructor(private readonly file: string) {}

  /** A clock file in `dir` holding no offset yet. */
  static async create(dir: string, name: string): Promise<FakedClock> {
    if (!existsSync(LIBFAKETIME))
      throw new Error(`${LIBFAKETIME} is missing: install libfaketime (scripts/install-deps.sh)`);
    const clock = new FakedClock(join(dir, `clock-${name}`));
    await clock.reset();
    return clock;
  }

  /** The environment that puts a process on this clock. */
  env(): Record<string, string> {
    return {
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: this.file,
      // Re-read the file on every call: a write is a jump, now.
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
  }

  /** Moves the clock by `offset` from the true time, in libfaketime's words: "+5m", "-3h", "+2d". */
  async jump(offset: string): Promise<void> {
    if (!/^[+-]\d+[smhdy]$/.test(offset)) throw new Error(`not a clock offset: ${offset}`);
    await writeFileAtomic(this.file, `${offset}\n`);
  }

  /** Back to the true time. */
  async reset(): Promise<void> {
    await writeFileAtomic(this.file, '+0\n');
  }
}
