#!/usr/bin/env bash
# Installs the Debian 12 packages one-storage needs to run and to be tested: qemu-img/qemu-io/qemu-nbd
# (qemu-utils), openssl (PKI), util-linux (fallocate, mkswap, blkid), e2fsprogs (mkfs for DISK/FS),
# genisoimage/xorriso (context ISOs, isoinfo), libvirt + QEMU system emulation (live snapshots and
# backups of running domains; the tests run TCG domains), and
# openssh-server (only for the transfer benchmark's tar-over-ssh baseline); the fleet test's tools are
# on their own marked line. As root it also creates onestorage-test, the unprivileged user the tests
# run agents as (standing for oneadmin).
set -euo pipefail
packages=(qemu-utils openssl util-linux coreutils e2fsprogs genisoimage xorriso openssh-server openssh-client
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86)
# Ansible roles (test/ansible: lint, syntax-check, local converge) and the fleet test (test/fleet): Debian 12
# nodes built with debootstrap, booted with systemd-nspawn, networked with ip/iptables.
packages+=(ansible-core ansible-lint debootstrap systemd-container iproute2 iptables)
# The metrics tests (test/metrics): a real Prometheus scrapes the daemons; promtool checks the
# exposition and the alert rules (deploy/prometheus).
packages+=(prometheus)
# The clock-jump fault suite (test/faults/clock-jump-*): libfaketime, preloaded into one agent, moves
# that agent's wall clock mid-run.
packages+=(faketime libfaketime)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]} (run with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The tests start their own Prometheus on loopback; the package's service (listening on every
  # address) is not wanted on a machine where this script installed it.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" != 20 ]; then
  echo "install-deps: Node 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
# The tests run agents as this user (test/security/unpriv-*), as production runs them as oneadmin:
# a system user with its own group, in libvirt's and kvm's groups (created by the packages above)
# as oneadmin is on an OpenNebula node. Idempotent: an existing user only gets missing groups.
test_user=onestorage-test
if [ "$(id -u)" -eq 0 ]; then
  if ! getent passwd "$test_user" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$test_user"
  fi
  for g in libvirt kvm; do
    if getent group "$g" >/dev/null; then usermod --append --groups "$g" "$test_user"; fi
  done
elif ! getent passwd "$test_user" >/dev/null; then
  # Not fatal: the demo runs without it; the tests that need it fail naming this script.
  echo "install-deps: warning: user $test_user is missing and only root can create it (run with sudo)" >&2
fi
bash "$(dirname "$0")/start-libvirt.sh"
echo "install-deps: system packages present, test user $test_user, libvirtd running"
