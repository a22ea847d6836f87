import { oneLine } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';

/** `--version` and `--help` print at once; a tool that hangs longer is broken. */
export const TOOL_CHECK_TIMEOUT_MS = 10_000;

/**
 * "7.2.22" from "qemu-img version 7.2.22 (Debian ...)", "QEMU emulator version 7.2.22" or
 * "qemu-nbd 7.2.22 (Debian ...)": the first dotted number after "version" or after the tool's name.
 */
export function versionIn(text: string): string | undefined {
  return /(?:\bversion\s+|^\S+\s+)(\d+\.\d+(?:\.\d+)?)/im.exec(text)?.[1];
}

/** [major, minor] of "7.2.22"; a missing part reads 0. */
export function versionParts(version: string): [number, number] {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return [major, minor];
}

/** Whether `version` is at least `min` (both "major.minor[.patch]"). */
export function atLeast(version: string, min: string): boolean {
  const [a, b] = versionParts(version);
  const [c, d] = versionParts(min);
  return a > c || (a === c && b >= d);
}

/** Runs `tool args` (argv, LANG=C, a timeout, the call's signal); stdout, or the one-line error. */
export async function toolOutput(
  tool: string,
  args: readonly string[],
  signal: AbortSignal,
): Promise<{ ok: true; stdout: string } | { ok: false; error: string; missing: boolean }> {
  try {
    const { stdout } = await runTool(tool, args, { signal, timeoutMs: TOOL_CHECK_TIMEOUT_MS });
    return { ok: true, stdout };
  } catch (err) {
    const missing = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code === 'ENOENT';
    return { ok: false, error: oneLine(err instanceof Error ? err.message : String(err)), missing };
  }
}
