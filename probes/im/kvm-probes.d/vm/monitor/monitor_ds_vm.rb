#!/usr/bin/env node
// one-storage vm/monitor probe: prints the disk lines of every marked datastore, from the local agent.
// Written by `one-storage shims install`; do not edit. The agent answers in push mode with nothing,
// so nothing reaches monitord twice (docs/monitoring.md).
'use strict';
const net = require('net');
const SOCKET = process.env.ONE_STORAGE_AGENT_SOCKET || "/run/one-storage/agent-monitor.sock";
const TIMEOUT_MS = 60000;
const request = 'VM';
function done(out, error) {
  if (error) process.stderr.write('one-storage vm_probe: ' + error + '\n');
  else process.stdout.write(out);
  process.exitCode = error ? 0 : 0;
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
    socket.write(request + '\n');
  });
  socket.on('data', function (chunk) {
    answer += chunk;
  });
  socket.on('end', function () {
    if (answer.startsWith('OK\n')) done(answer.slice(3));
    else if (answer.startsWith('ERROR ')) done('', answer.slice(6).trim());
    else done('', 'unexpected answer from the agent at ' + SOCKET);
  });
  socket.on('error', function (err) {
    done('', 'cannot reach the agent at ' + SOCKET + ': ' + (err.code || err.message));
  });
}
