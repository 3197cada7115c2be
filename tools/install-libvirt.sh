#!/usr/bin/env bash
# Install and start what libvirt/QEMU guests need on a fresh Debian host here,
# then build libvirt-python into a virtualenv. Safe to run again: every step
# checks first and does nothing when it is already done.
#
#   tools/install-libvirt.sh [VENV]      (default VENV: .venv next to tools/)
#
# Facts about these machines that this relies on:
# - no systemd as PID 1: the daemons are started directly with --daemon;
# - no usable KVM: guests run under QEMU TCG (qemu-system-x86);
# - QEMU runs as libvirt-qemu (DAC security model; no AppArmor here), so the
#   files a guest uses must sit in directories that user can traverse;
# - libvirt-python has no wheels: pip builds it against libvirt-dev, found
#   through pkg-config.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${1:-"$here/../.venv"}
uri=qemu:///system
wait_seconds=${LIBVIRT_WAIT_SECONDS:-60}

packages=(
  libvirt-daemon-system   # libvirtd, virtlogd, qemu.conf and the libvirt-qemu user
  libvirt-clients         # virsh, virt-xml-validate
  libxml2-utils           # xmllint, which virt-xml-validate runs
  qemu-system-x86         # the x86_64 system emulator (TCG)
  qemu-utils              # qemu-img
  libvirt-dev pkg-config  # to build libvirt-python
  busybox-static e2fsprogs cpio  # the test guest (virtstack.image.testimage)
  xorriso                 # config drive ISOs (virtstack/virt/powervm/configdrive.py)
)

say() { printf '[install-libvirt] %s\n' "$*"; }
die() { printf '[install-libvirt] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$venv/bin/python" ] || die "no virtualenv at $venv (give its path as the first argument)"
venv=$(cd "$venv" && pwd)

# -- 1. packages -------------------------------------------------------------
missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "apt packages: already installed"
else
  say "apt packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # Recommends would add lvm2, dnsmasq, LXC and Xen drivers: none is used here.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- 2. /dev/kvm permissions -------------------------------------------------------
# Without udev, /dev/kvm stays root-only (0600). libvirt's QEMU capability probe
# still finds KVM, but its cache check asks whether libvirt-qemu can open
# /dev/kvm, gets "no", calls the cache stale and probes QEMU again on *every*
# API call that needs capabilities (~4 s each: version, define, start...).
# Debian's udev rule gives /dev/kvm to group kvm, mode 0660 (libvirt-qemu is in
# kvm); do the same. Guests still use TCG: KVM itself does not work here.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  if [ "$(stat -c '%G %a' /dev/kvm)" = "kvm 660" ]; then
    say "/dev/kvm: already group kvm, mode 0660"
  else
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    say "/dev/kvm: set group kvm, mode 0660 (stops libvirt re-probing QEMU on every call)"
  fi
fi

# -- 3. daemons ----------------------------------------------------------------
# start_daemon NAME: start /usr/sbin/NAME --daemon (which writes
# /run/NAME.pid) unless one is running already, however it was started.
start_daemon() {
  local name=$1 pid
  pid=$(pgrep -x "$name" | head -n 1 || true)
  if [ -n "$pid" ]; then
    say "$name: already running (pid $pid)"
  else
    "/usr/sbin/$name" --daemon
    say "$name: started"
  fi
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_until() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

# libvirtd hands guests' console output to virtlogd (stdio_handler = "logd"):
# without it, starting a guest fails.
start_daemon virtlogd
wait_until "$wait_seconds" "virtlogd's socket" test -S /run/libvirt/virtlogd-sock
start_daemon libvirtd
wait_until "$wait_seconds" "libvirtd to answer on $uri" virsh -c "$uri" version
say "libvirt: $(virsh -c "$uri" version | sed -n 's/^Running hypervisor: //p') answering on $uri"

# -- 4. libvirt-python ---------------------------------------------------------
if "$venv/bin/python" -c 'import libvirt' 2>/dev/null; then
  say "libvirt-python: already in $venv"
else
  say "libvirt-python: building into $venv"
  log="$venv/pip-libvirt.log"
  if ! "$venv/bin/pip" install --disable-pip-version-check libvirt-python >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "[install-libvirt] error: building libvirt-python failed; full log in $log" >&2
    exit 1
  fi
fi
"$venv/bin/python" - "$uri" <<'EOF'
import sys
from importlib import metadata
import libvirt
conn = libvirt.open(sys.argv[1])
version = conn.getLibVersion()
print("[install-libvirt] libvirt-python %s talks to libvirt %d.%d.%d" % (
    metadata.version("libvirt-python"), version // 1000000, version // 1000 % 1000,
    version % 1000))
conn.close()
EOF
