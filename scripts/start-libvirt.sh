#!/usr/bin/env bash
# Starts virtlogd and libvirtd when they are not answering (machines without systemd as PID 1, CI),
# and waits until `virsh -c qemu:///system version` answers. Safe to run again: a running libvirtd
# is left alone. Their PIDs are in /run/virtlogd.pid and /run/libvirtd.pid.
set -euo pipefail
uri=qemu:///system
# libvirt runs QEMU as libvirt-qemu (group kvm). Without udev, /dev/kvm stays root-only, and
# libvirtd then re-probes QEMU's capabilities on every domain start (about 45 s each) because
# KVM looks present to root and absent to the QEMU user. Give it udev's usual mode.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
if virsh -c "$uri" version >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "start-libvirt: libvirtd is not running and starting it needs root" >&2
  exit 1
fi
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 100); do
  if virsh -c "$uri" version >/dev/null 2>&1; then exit 0; fi
  sleep 0.2
done
echo "start-libvirt: libvirtd did not answer on $uri within 20 s" >&2
exit 1
