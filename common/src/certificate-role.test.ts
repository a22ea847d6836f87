import { describe, expect, it } from 'vitest';
import {
  identityOfSubject,
  pkiIssueCommand,
  type ParsedSubject,
  type RoleFinding,
} from './certificate-role.js';

describe('identityOfSubject', () => {
  it.each<[string, ParsedSubject | undefined, string, RoleFinding]>([
    ['a coordinator', { OU: 'one-storage-coordinator', CN: 'coordinator' }, 'coordinator', 'coordinator'],
    ['an agent', { OU: 'one-storage-agent', CN: 'host01' }, 'host01', 'agent'],
    ['an agent with other units too', { OU: ['ops', 'one-storage-agent'], CN: 'host01' }, 'host01', 'agent'],
    ['a certificate from before roles', { CN: 'coordinator' }, 'coordinator', 'none'],
    ['an OU that is not ours', { OU: 'one-storage-admin', CN: 'x' }, 'x', 'none'],
    ['an OU that only looks like ours', { OU: 'One-Storage-Coordinator', CN: 'x' }, 'x', 'none'],
    ['both roles', { OU: ['one-storage-agent', 'one-storage-coordinator'], CN: 'x' }, 'x', 'conflicting'],
    ['no subject at all', undefined, '(no CN)', 'none'],
  ])('%s', (_title, subject, name, role) => {
    expect(identityOfSubject(subject)).toEqual({ name, role });
  });
});

it('pkiIssueCommand is the command line an operator can paste', () => {
  expect(pkiIssueCommand('coordinator', 'coordinator', '/etc/one-storage/pki', true)).toBe(
    'one-storage pki issue --role coordinator --name coordinator --dir /etc/one-storage/pki --force',
  );
  expect(pkiIssueCommand('agent', 'host01', '/etc/one-storage/pki', false)).toBe(
    'one-storage pki issue --role agent --name host01 --dir /etc/one-storage/pki',
  );
});
