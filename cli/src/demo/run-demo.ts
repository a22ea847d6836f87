import { runDemoLifecycle } from './demo.js';
import { Stack } from './stack.js';

/**
 * `one-storage demo`: a whole system on loopback in a temporary directory (fake oned, coordinator,
 * agents for frontend, host01 and host02, installed shims), the guide's VM lifecycle through it,
 * and the checks. With --stay the stack keeps running (its description printed as one JSON line)
 * until SIGINT/SIGTERM, which stop everything it started.
 */
export async function runDemo(opts: { stay: boolean }): Promise<number> {
  const print = (line: string): void => console.log(line);
  const started = Date.now();
  print(
    'one-storage demo: starting a fake oned, a coordinator and agents for frontend, host01, host02 on loopback',
  );
  const stack = await Stack.start();
  print(`stack up in ${Date.now() - started} ms at ${stack.baseDir}`);
  let ok = false;
  try {
    ok = await runDemoLifecycle(stack, print);
    print(ok ? 'demo: all checks passed' : 'demo: some checks FAILED (logs kept in the stack directory)');
  } catch (err) {
    print(`demo: failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!opts.stay) {
    await stack.stop({ keepFiles: !ok });
    return ok ? 0 : 1;
  }
  console.log(
    JSON.stringify({
      remotes: stack.remotesDir,
      datastores: stack.datastoreDirs,
      fixtures: stack.fixturesDir,
      socket: stack.socket,
      journal: stack.journalPath,
      oned: stack.oned.endpoint,
      pids: stack.pids(),
    }),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await stack.stop();
  return ok ? 0 : 1;
}
