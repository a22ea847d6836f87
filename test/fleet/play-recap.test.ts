import { describe, expect, it } from 'vitest';
import { parsePlayRecap } from './support/play-recap.js';

const OUTPUT = `TASK [one_storage_agent : Start the agent] ****
ok: [host01]

PLAY RECAP *********************************************************************
frontend                   : ok=41   changed=0    unreachable=0    failed=0    skipped=7    rescued=0    ignored=0
host01                     : ok=30   changed=2    unreachable=0    failed=1    skipped=5    rescued=1    ignored=0

`;

describe('parsePlayRecap', () => {
  it('reads every counter of every host', () => {
    expect(parsePlayRecap(OUTPUT)).toEqual({
      frontend: { ok: 41, changed: 0, unreachable: 0, failed: 0, skipped: 7, rescued: 0, ignored: 0 },
      host01: { ok: 30, changed: 2, unreachable: 0, failed: 1, skipped: 5, rescued: 1, ignored: 0 },
    });
  });

  it('fails when the run stopped before its recap', () => {
    expect(() => parsePlayRecap('ERROR! the playbook could not be found\n')).toThrow(/no PLAY RECAP/);
  });

  it('fails naming the host whose line lacks a counter', () => {
    expect(() => parsePlayRecap('PLAY RECAP ***\nhost02 : ok=3 changed=0\n')).toThrow(
      /host02 has no unreachable=/,
    );
  });
});
