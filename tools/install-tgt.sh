#!/usr/bin/env bash
# Install and start the tgt iSCSI target that the `iscsi` volume backend
# exports volumes with. Safe to run again: every step checks first and does
# nothing when it is already done.
#
#   tools/install-tgt.sh
#
# Facts about these machines that this relies on:
# - no systemd as PID 1: tgtd is started directly (it daemonises itself);
# - tgtd keeps targets in memory only: a restarted tgtd has none, and the
#   volume service puts its exports back at start (ensure_exports);
# - guests reach the LUNs through QEMU's own iSCSI client (libiscsi), so no
#   kernel initiator (open-iscsi) is needed.
set -euo pipefail

wait_seconds=${TGT_WAIT_SECONDS:-30}

say() { printf '[install-tgt] %s\n' "$*"; }
die() { printf '[install-tgt] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"

tgt_answers() { tgtadm --lld iscsi --op show --mode target >/dev/null 2>&1; }

packages=(
  tgt               # tgtd and tgtadm
  qemu-block-extra  # QEMU's iSCSI client (block-iscsi module, libiscsi): how
                    # guests, qemu-img and qemu-io reach the LUNs
)

# -- 1. packages ---------------------------------------------------------------
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
  # Recommends pull in sg3-utils and a Perl stack for tgt-admin: not used.
  # Without an init system the package does not start tgtd; step 2 does.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- 2. daemon -----------------------------------------------------------------
pid=$(pgrep -x tgtd | head -n 1 || true)
if [ -n "$pid" ] && tgt_answers; then
  say "tgtd: already running (pid $pid)"
else
  if [ -z "$pid" ]; then
    /usr/sbin/tgtd
    say "tgtd: started"
  fi
  deadline=$((SECONDS + wait_seconds))
  until tgt_answers; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${wait_seconds}s waiting for tgtd to answer tgtadm"
    sleep 0.2
  done
fi
say "tgt: $(tgtadm --version 2>/dev/null || echo '?') answering on its management socket"
