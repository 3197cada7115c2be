#!/usr/bin/env bash
# Runs Tempest against a virtstack all-in-one and summarises the results per
# module family (docs/tempest.md has the latest results and why tests skip).
#
#   tools/run-tempest.sh [--driver libvirt|fake] [--concurrency N]
#                        [--regex REGEX] [--workdir DIR] [--config-file FILE]
#
# Without --config-file it starts `virtstack up` of its own (own state path
# under the work directory, own free ports, the chosen driver; libvirt guests
# are named vt-tempest-*), and stops it at the end. With --config-file it
# uses the virtstack already running with that configuration.
# Then: `virtstack tempest-config`, `tempest run` (stestr) over the regex
# minus tools/tempest-exclude.txt (tests of APIs virtstack does not have),
# and WORKDIR/summary.md + summary.json. Exits non-zero if a test failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DRIVER=""
CONCURRENCY=1
REGEX='^tempest\.api\.(compute\.(servers|volumes|flavors)|volume|image)\.'
WORKDIR=""
CONFIG_FILE=""
EXCLUDE="$ROOT/tools/tempest-exclude.txt"
while [ $# -gt 0 ]; do
  case "$1" in
    --driver) DRIVER=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --regex) REGEX=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --config-file) CONFIG_FILE=$2; shift 2 ;;
    --exclude-list) EXCLUDE=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run-tempest: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'run-tempest: %s\n' "$*"; }

tools/install.sh >/dev/null
TEMPEST=$(tools/install-tempest.sh | tail -n 1)
TVENV=$(dirname "$(dirname "$TEMPEST")")
PY="$ROOT/.venv/bin/python"

if [ -z "$DRIVER" ]; then
  if virsh -q -c qemu:///system uri >/dev/null 2>&1; then DRIVER=libvirt; else DRIVER=fake; fi
fi
WORKDIR=$(realpath -m "${WORKDIR:-$ROOT/.tempest/$DRIVER}")
mkdir -p "$WORKDIR"
# QEMU (another user) must traverse the state path of libvirt guests.
chmod 711 "$WORKDIR"

UP_PID=""
stop_virtstack() {
  if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -INT "$UP_PID"
    for _ in $(seq 1 120); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$UP_PID" 2>/dev/null && kill -KILL "$UP_PID"
    UP_PID=""
  fi
  if [ "$DRIVER" = libvirt ] && command -v virsh >/dev/null; then
    for dom in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep '^vt-tempest-' || true); do
      say "removing domain $dom left behind"
      virsh -q -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
      virsh -q -c qemu:///system undefine --managed-save "$dom" >/dev/null 2>&1 || true
    done
  fi
}
trap stop_virtstack EXIT

if [ -z "$CONFIG_FILE" ]; then
  STATE="$WORKDIR/state"
  rm -rf "$STATE"
  mkdir -p "$STATE/cache"
  chmod 711 "$STATE"
  # The test guest is built once per machine (tests use the same cache).
  IMAGE_CACHE=${VIRTSTACK_TEST_IMAGE_DIR:-$HOME/.cache/virtstack/test-image}
  mkdir -p "$IMAGE_CACHE"
  ln -s "$IMAGE_CACHE" "$STATE/cache/test-image"
  read -r P_COMPUTE P_VOLUME P_IMAGE P_IDENTITY < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
  CONFIG_FILE="$WORKDIR/virtstack.conf"
  cat >"$CONFIG_FILE" <<EOF
[DEFAULT]
state_path = $STATE
host = vt-tempest
[database]
connection = sqlite:///$STATE/virtstack.sqlite
[api]
listen = 127.0.0.1
public_host = 127.0.0.1
compute_port = $P_COMPUTE
volume_port = $P_VOLUME
image_port = $P_IMAGE
identity_port = $P_IDENTITY
[identity]
# Tempest signs in for every test class: cheap password hashes.
password_hash_rounds = 4
[compute]
compute_driver = $DRIVER
instance_name_template = vt-tempest-%08x
# A stop or soft reboot of a guest still booting waits for its acpid.
shutdown_retry_interval = 1
reboot_timeout = 60
[libvirt]
virt_type = qemu
EOF
  say "starting virtstack up ($DRIVER driver; log $WORKDIR/up.log)"
  .venv/bin/virtstack --config-file "$CONFIG_FILE" up >"$WORKDIR/up.log" 2>&1 &
  UP_PID=$!
  for _ in $(seq 1 240); do
    if ! kill -0 "$UP_PID" 2>/dev/null; then
      cat "$WORKDIR/up.log" >&2; echo "run-tempest: error: virtstack up exited" >&2; exit 1
    fi
    curl -sf "http://127.0.0.1:$P_IDENTITY/v3" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$P_IDENTITY/v3" >/dev/null \
    || { echo "run-tempest: error: virtstack did not serve within 120 s" >&2; exit 1; }
fi

say "writing Tempest's configuration"
.venv/bin/virtstack --config-file "$CONFIG_FILE" tempest-config --output-dir "$WORKDIR/etc"
TEMPEST_CONF="$WORKDIR/etc/tempest.conf"
rm -rf "$WORKDIR/etc/locks"/*

# A Tempest workspace of our own: stestr's repository, test discovery.
SITE=$("$TVENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '[DEFAULT]\ntest_path=%s/tempest/test_discover\ntop_dir=%s\n' "$SITE" "$SITE" \
  >"$WORKDIR/.stestr.conf"
cd "$WORKDIR"
rm -rf .stestr && "$TVENV/bin/stestr" init >/dev/null

EXCLUDE_ARGS=()
[ -f "$EXCLUDE" ] && EXCLUDE_ARGS=(--exclude-list "$EXCLUDE")
"$TEMPEST" run --config-file "$TEMPEST_CONF" --list-tests --regex "$REGEX" \
  "${EXCLUDE_ARGS[@]}" 2>/dev/null | grep '^tempest\.' >selected.txt || true
"$TEMPEST" run --config-file "$TEMPEST_CONF" --list-tests --regex "$REGEX" 2>/dev/null \
  | grep '^tempest\.' | grep -vxFf selected.txt >excluded.txt || true
say "running $(wc -l <selected.txt) tests ($(wc -l <excluded.txt) excluded as not applicable)" \
  "with concurrency $CONCURRENCY; console in $WORKDIR/console.txt"
START=$(date +%s)
rc=0
"$TEMPEST" run --config-file "$TEMPEST_CONF" --concurrency "$CONCURRENCY" \
  --regex "$REGEX" "${EXCLUDE_ARGS[@]}" >console.txt 2>&1 || rc=$?
say "tempest run took $(( $(date +%s) - START )) s (exit $rc)"
# stestr last and subunit2csv exit 1 when the run had failures; the stream
# and the table are complete anyway.
{ "$TVENV/bin/stestr" last --subunit || true; } | { "$TVENV/bin/subunit2csv" || true; } \
  >results.csv
summary_rc=0
"$PY" "$ROOT/tools/tempest_summary.py" --list selected.txt --excluded excluded.txt \
  --csv results.csv --console console.txt --markdown summary.md --json summary.json \
  || summary_rc=$?
say "summary in $WORKDIR/summary.md; failures with tracebacks: (cd $WORKDIR && $TVENV/bin/stestr failing)"
[ "$rc" -eq 0 ] && [ "$summary_rc" -eq 0 ]
