/** One host's line of ansible-playbook's PLAY RECAP. */
export interface HostRecap {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

const COUNTERS = ['ok', 'changed', 'unreachable', 'failed', 'skipped', 'rescued', 'ignored'] as const;
const HOST_LINE = /^(\S+)\s+:\s+(.*)$/;

/**
 * The PLAY RECAP of ansible-playbook's default output, host by host. Throws when the output has no
 * recap (the run stopped before it) or a host line lacks a counter, naming what is missing.
 */
export function parsePlayRecap(output: string): Record<string, HostRecap> {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.startsWith('PLAY RECAP'));
  if (start < 0) throw new Error('ansible-playbook printed no PLAY RECAP');
  const recap: Record<string, HostRecap> = {};
  for (const line of lines.slice(start + 1)) {
    const m = HOST_LINE.exec(line.trim());
    if (!m?.[1] || !m[2]) break;
    const counts = Object.fromEntries(
      m[2]
        .trim()
        .split(/\s+/)
        .map((pair) => pair.split('='))
        .map(([k, v]) => [k, Number(v)]),
    ) as Record<string, number>;
    const host = {} as HostRecap;
    for (const c of COUNTERS) {
      const v = counts[c];
      if (v === undefined || !Number.isInteger(v))
        throw new Error(`PLAY RECAP line for ${m[1]} has no ${c}=`);
      host[c] = v;
    }
    recap[m[1]] = host;
  }
  if (Object.keys(recap).length === 0) throw new Error('PLAY RECAP lists no host');
  return recap;
}
