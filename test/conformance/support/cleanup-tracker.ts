import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { layout } from '../../support/files.js';

/**
 * What a conformance test made under the agent's datastore root: each path is registered when the
 * test names it, removed after the test, and then the root must hold exactly what it held when the
 * agent started (csi-sanity's cleanup). Anything else left there (a temporary, a probe, a directory
 * the test did not register) fails the test that left it.
 */
export class CleanupTracker {
  private readonly tracked = new Set<string>();
  private baseline: string[] = [];
  /** Paths a whole file uses (a running domain's disk): not checked between its tests. */
  private readonly fileScoped = new Set<string>();

  constructor(private readonly root: string) {}

  /** Records the root's entries as they are now: what every test must leave behind. */
  takeBaseline(): void {
    this.baseline = layout(this.root);
  }

  /** Registers `rel` (relative to the root) for removal after the test and returns it. */
  track(rel: string): string {
    this.tracked.add(rel);
    return rel;
  }

  /**
   * Exempts `rel` and what lies under it from the check between tests (it lives as long as the
   * file's agent: a running domain's disk); tests still track what they make inside it.
   */
  keepForFile(rel: string): string {
    this.fileScoped.add(rel);
    return rel;
  }

  /** Removes every registered path, then fails naming whatever else differs from the baseline. */
  async cleanup(): Promise<void> {
    const paths = [...this.tracked];
    this.tracked.clear();
    await Promise.all(paths.map((rel) => rm(join(this.root, rel), { recursive: true, force: true })));
    const scoped = (e: string): boolean =>
      [...this.fileScoped].some((k) => e === `${k}/` || e.startsWith(`${k}/`));
    const now = layout(this.root).filter((e) => !scoped(e));
    const left = now.filter((e) => !this.baseline.includes(e));
    const gone = this.baseline.filter((e) => !now.includes(e));
    if (left.length > 0 || gone.length > 0) {
      throw new Error(
        `the datastore root differs after the test: left ${JSON.stringify(left)}, gone ${JSON.stringify(gone)}`,
      );
    }
  }
}
