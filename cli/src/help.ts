// `one-storage [COMMAND] --help`: what each command does, its options and, where it matters, its
// exit codes. The usage lines are the ones `one-storage` prints on a usage error.
import { CANCEL_HELP, JOBS_HELP } from './jobs/jobs-command.js';

export const COMMAND_HELP: Readonly<Record<string, string>> = {
  'pki init': `usage: one-storage pki init --dir DIR

Creates the cloud's CA (ca.crt, ca.key) in DIR. An existing CA is kept.`,
  'pki issue': `usage: one-storage pki issue --dir DIR --name HOST [--role agent|coordinator] [--ip ADDR]... [--force]

Issues HOST.crt and HOST.key in DIR from its CA: the name in CN and as a DNS subjectAltName, each
--ip as an IP subjectAltName, the role (default agent) as the subject's OU. An existing pair with
the same role is kept; --force replaces it.`,
  'shims install': `usage: one-storage shims install --remotes DIR [--socket PATH] [--runtime DIR]

Writes one shim per driver action under oned's remotes directory DIR, and the monitoring probes
under DIR/im. --socket: the coordinator's socket (default /run/one-storage/coordinator.sock);
--runtime: the directory holding run-shim.cjs (default: this installation's).`,
  'shims uninstall': `usage: one-storage shims uninstall --remotes DIR

Removes the shims and probes installed under DIR and puts back OpenNebula's probes.`,
  demo: `usage: one-storage demo [--stay]

Runs a whole one-storage system on loopback (fake oned, coordinator, three agents) and a few
driver actions through it. --stay keeps it running until Ctrl-C.`,
  journal: `usage: one-storage journal [--db FILE] [--limit N] [--request ID] [--json]

Shows the coordinator's journal of driver calls, newest first (default the last 20).`,
  status: `usage: one-storage status [--config FILE] [--agent NAME]... [--timeout-ms N] [--json]

The fleet at a glance, from the front-end with the coordinator's config and certificate: a line
for the coordinator (its socket, its certificate) and one per agent: reachable or why not, version,
certificate expiry, each datastore's free space, libvirt, monitoring mode and the last delivery to
monitord. Each line reads NAME ok|WARNING|FAILED, then what was found.
  --config FILE     the coordinator's config (default /etc/one-storage/coordinator.yaml)
  --agent NAME      only this agent (repeatable); the coordinator's line is left out
  --timeout-ms N    how long each agent gets to answer (default 10000)
  --json            one JSON object instead of lines
Exit codes: 0 nothing FAILED (warnings allowed), 1 something FAILED, 2 usage or config error.`,
  doctor: `usage: one-storage doctor [--config FILE] [--host H] [--oned-conf FILE] [--vmm-execrc FILE] [--timeout-ms N] [--json]

Checks end to end, one line per check: ok|WARN|FAIL  <check>: <what was found>, and below a
check that is not ok, "  fix: <what to do>".
Without --host: the front-end: the coordinator's config, CA and certificate (role, expiry), its
socket, oned with the configured credentials, the shims under the remotes directory (present and of
this version), oned.conf's declarations and vmm_execrc's LIVE_DISK_SNAPSHOTS.
With --host H: agent H: reachable, clock skew against this host, its datastores and monitoring,
qemu-img and its features, qemu-nbd, libvirt and QEMU versions, root owners, the data path and its
certificate.
  --config FILE       the coordinator's config (default /etc/one-storage/coordinator.yaml)
  --oned-conf FILE    default /etc/one/oned.conf
  --vmm-execrc FILE   default /etc/one/vmm_exec/vmm_execrc
  --timeout-ms N      how long the agent gets to answer each call (default 30000)
  --json              one JSON object instead of lines
Exit codes: 0 no FAIL (warnings allowed), 1 a FAIL, 2 usage or config error.`,
  jobs: JOBS_HELP,
  cancel: CANCEL_HELP,
  'oned-conf': `usage: one-storage oned-conf [--apply FILE | --remove FILE] [--check]

Without a file, prints the oned.conf declarations of the one-storage drivers. --apply adds them to
FILE, --remove takes them out; --check only says whether the file would change.`,
  'vmm-execrc': `usage: one-storage vmm-execrc [--apply FILE | --remove FILE] [--check]

Without a file, prints the LIVE_DISK_SNAPSHOTS pairs one-storage adds to vmm_execrc. --apply adds
them to FILE, --remove takes them out; --check only says whether the file would change.`,
};

/** The first line (usage: ...) of every command, for the overall usage. */
export function usageLines(): string {
  return [
    'usage:',
    ...Object.values(COMMAND_HELP).map((h) => `  ${(h.split('\n', 1)[0] ?? '').replace(/^usage: /, '')}`),
    '  one-storage COMMAND --help',
  ].join('\n');
}
