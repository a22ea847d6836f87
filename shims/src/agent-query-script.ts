// The host-side scripts that ask the local agent for monitoring data instead of running du: the
// TM `monitor_ds` (run by the vm/monitor probe from /var/tmp/one/tm/<drv>/monitor_ds) and the
// kvm-probes.d probes themselves. They run on hypervisors, where the agent is, and are distributed
// by `onehost sync`, so each is one self-contained CommonJS file with nothing to load but node's
// `net`: no coordinator, no TLS, no node_modules, and a start-up close to `node -e 0`.

import { AGENT_MONITOR_SOCKET } from '../../common/src/monitord/defaults.js';

/** Where the agent's monitoring endpoint listens unless ONE_STORAGE_AGENT_SOCKET says otherwise. */
export const DEFAULT_AGENT_SOCKET = AGENT_MONITOR_SOCKET;
export const AGENT_SOCKET_ENV = 'ONE_STORAGE_AGENT_SOCKET';

export type AgentQueryKind = 'monitor_ds' | 'system_probe' | 'vm_probe';

/**
 * Paths of the probes under `<remotes>/im/`. They keep the names of the stock probes they replace
 * (host/system/monitor_ds.rb, vm/monitor/monitor_ds_vm.rb), so that `onehost sync` overwrites those
 * and du stops running; the content is JavaScript run by node (the #! line decides, not the name).
 */
export const PROBE_FILES: ReadonlyArray<{ kind: AgentQueryKind; path: string }> = [
  { kind: 'system_probe', path: 'kvm-probes.d/host/system/monitor_ds.rb' },
  { kind: 'vm_probe', path: 'kvm-probes.d/vm/monitor/monitor_ds_vm.rb' },
];

const PURPOSE: Readonly<Record<AgentQueryKind, string>> = {
  monitor_ds:
    'tm monitor_ds <ds_path>: prints the VM = [ ID, MONITOR ] lines of that datastore from the local agent',
  system_probe:
    'host/system probe: prints DS_LOCATION_*_MB and DS = [ ... ] for the marked datastores, from the local agent',
  vm_probe: 'vm/monitor probe: prints the disk lines of every marked datastore, from the local agent',
};

/**
 * The script text. `monitor_ds` exits 1 on failure (its caller skips failing scripts); the probes
 * exit 0 with one stderr line when the agent cannot be reached, so the other probes of their group
 * still count (a failing probe turns the whole group into FAILURE).
 */
export function agentQueryScript(kind: AgentQueryKind): string {
  const request =
    kind === 'monitor_ds'
      ? "process.argv[2] ? 'VM ' + process.argv[2] : undefined"
      : kind === 'system_probe'
        ? "'SYSTEM'"
        : "'VM'";
  const failureCode = kind === 'monitor_ds' ? 1 : 0;
  return `#!/usr/bin/env node
// one-storage ${PURPOSE[kind]}.
// Written by \`one-storage shims install\`; do not edit. The agent answers in push mode with nothing,
// so nothing reaches monitord twice (docs/monitoring.md).
'use strict';
const net = require('net');
const SOCKET = process.env.${AGENT_SOCKET_ENV} || ${JSON.stringify(DEFAULT_AGENT_SOCKET)};
const TIMEOUT_MS = 60000;
const request = ${request};
function done(out, error) {
  if (error) process.stderr.write('one-storage ${kind}: ' + error + '\\n');
  else process.stdout.write(out);
  process.exitCode = error ? ${failureCode} : 0;
  process.stdin.destroy();
}
// The probe runner writes its configuration on stdin: drain it so the writer never meets EPIPE.
process.stdin.on('error', function () {});
if (!process.stdin.isTTY) process.stdin.resume();
if (request === undefined) {
  done('', 'usage: monitor_ds <datastore_path>');
} else {
  let answer = '';
  const socket = net.connect({ path: SOCKET });
  socket.setEncoding('utf8');
  socket.setTimeout(TIMEOUT_MS, function () {
    socket.destroy(new Error('no answer in ' + TIMEOUT_MS / 1000 + ' s'));
  });
  socket.on('connect', function () {
    socket.write(request + '\\n');
  });
  socket.on('data', function (chunk) {
    answer += chunk;
  });
  socket.on('end', function () {
    if (answer.startsWith('OK\\n')) done(answer.slice(3));
    else if (answer.startsWith('ERROR ')) done('', answer.slice(6).trim());
    else done('', 'unexpected answer from the agent at ' + SOCKET);
  });
  socket.on('error', function (err) {
    done('', 'cannot reach the agent at ' + SOCKET + ': ' + (err.code || err.message));
  });
}
`;
}
