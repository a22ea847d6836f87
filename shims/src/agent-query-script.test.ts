import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROBE_FILES, agentQueryScript } from './agent-query-script.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'probes', 'im');

describe('host-side monitoring scripts', () => {
  it('the probes shipped in probes/im are the ones `shims install` writes, executable', () => {
    for (const p of PROBE_FILES) {
      const file = join(SHIPPED, p.path);
      expect(readFileSync(file, 'utf8'), `${file} is stale: regenerate it from agentQueryScript`).toBe(
        agentQueryScript(p.kind),
      );
      expect(statSync(file).mode & 0o111).toBe(0o111);
    }
  });

  it('keep the stock probe names, so onehost sync replaces the du-based ones', () => {
    expect(PROBE_FILES.map((p) => p.path)).toEqual([
      'kvm-probes.d/host/system/monitor_ds.rb',
      'kvm-probes.d/vm/monitor/monitor_ds_vm.rb',
    ]);
  });

  it('load nothing but node built-ins', () => {
    for (const kind of ['monitor_ds', 'system_probe', 'vm_probe'] as const) {
      const requires = [...agentQueryScript(kind).matchAll(/require\('([^']+)'\)/g)].map((m) => m[1]);
      expect(requires).toEqual(['net']);
    }
  });
});
