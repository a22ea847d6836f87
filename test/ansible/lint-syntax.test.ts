// deploy/ansible passes ansible-lint's production profile, and each playbook passes
// ansible-playbook --syntax-check with the example inventory.
import { describe, expect, it } from 'vitest';
import { PLAYBOOKS, runTool } from './ansible-tools.js';

describe('deploy/ansible', () => {
  it('passes ansible-lint --profile production', () => {
    const r = runTool('ansible-lint', ['--profile', 'production', '-p', 'deploy/ansible']);
    expect(r.stdout + r.stderr).not.toMatch(/^deploy\/ansible\/.*:\d+/m);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  }, 300_000);

  it.each(PLAYBOOKS)(
    '%s passes --syntax-check with the example inventory',
    (playbook) => {
      const r = runTool('ansible-playbook', [
        '--syntax-check',
        '-i',
        'deploy/ansible/inventory/example.yml',
        `deploy/ansible/${playbook}`,
      ]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`playbook: deploy/ansible/${playbook}`);
    },
    120_000,
  );
});
