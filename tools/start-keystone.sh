#!/usr/bin/env bash
# A real Keystone (Identity v3) for [identity] mode = keystone, on loopback
# (idempotent: run it again and it only does what is missing).
#
#   tools/start-keystone.sh [DIR] [--port N] [--compute-port N]
#                           [--volume-port N] [--image-port N]
#   tools/start-keystone.sh --stop [DIR]
#
# Keystone comes from PyPI into its own virtualenv (.venv-keystone: its pins
# may differ from virtstack's), keeps everything under DIR (default
# /tmp/virtstack-keystone: SQLite database, Fernet token, receipt and
# credential keys, logs) and is served by gunicorn on 127.0.0.1:PORT
# (default 5000). The script bootstraps the admin project and user, a
# 'service' project with the 'virtstack' service user (role admin, for
# keystonemiddleware), a 'demo' project and user (role member), and the
# catalog of virtstack's APIs on the given ports. It writes:
#   DIR/clouds.yaml              clouds 'virtstack-admin' and 'virtstack-demo'
#   DIR/virtstack-keystone.conf  [identity] and [keystone_authtoken] for
#                                virtstack --config-file
# both mode 0600. Passwords are generated on the first run and kept in
# DIR/passwords.env (0600); KEYSTONE_ADMIN_PASSWORD, KEYSTONE_SERVICE_PASSWORD
# and KEYSTONE_DEMO_PASSWORD in the environment set them instead. They are
# never printed nor passed on a command line. KEYSTONE_PASSWORD_HASH_ROUNDS
# lowers Keystone's bcrypt cost (tests: 4) for passwords set from then on.
#
# Exit status: 0 ready; 1 failed; 2 bad usage; 3 the install from PyPI failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VIRTSTACK_KEYSTONE_VENV:-$ROOT/.venv-keystone}

say() { printf 'keystone: %s\n' "$*"; }
die() { printf 'keystone: error: %s\n' "$*" >&2; exit "${2:-1}"; }

usage() {
  sed -n '5,7p' "$0" | sed 's/^# //' >&2
  exit 2
}

DIR=/tmp/virtstack-keystone
PORT=5000 COMPUTE_PORT=8774 VOLUME_PORT=8776 IMAGE_PORT=9292
STOP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stop) STOP=1 ;;
    --port) PORT=${2:?}; shift ;;
    --compute-port) COMPUTE_PORT=${2:?}; shift ;;
    --volume-port) VOLUME_PORT=${2:?}; shift ;;
    --image-port) IMAGE_PORT=${2:?}; shift ;;
    -h|--help) usage ;;
    -*) echo "keystone: unknown option $1" >&2; usage ;;
    *) DIR=$1 ;;
  esac
  shift
done
for p in "$PORT" "$COMPUTE_PORT" "$VOLUME_PORT" "$IMAGE_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "bad port '$p'" 2
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDFILE=$DIR/gunicorn.pid

running_pid() {  # the gunicorn master's pid if it runs, else nothing
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if [ "$STOP" = 1 ]; then
  if pid=$(running_pid); then
    kill -TERM "$pid"
    deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || die "gunicorn ($pid) did not stop within 20 s"
      sleep 0.2
    done
    say "stopped (gunicorn $pid)"
  else
    say "not running (no live $PIDFILE)"
  fi
  rm -f "$PIDFILE"
  exit 0
fi

T0=$SECONDS
# --- 1. Keystone and gunicorn in their own virtualenv ----------------------
find_python() {
  for py in python3.11 python3.12 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  return 1
}
STAMP=$VENV/.keystone-installed
if [ ! -f "$STAMP" ]; then
  PY=$(find_python) || die "no Python >= 3.10 to make $VENV" 3
  LOG=$DIR/pip-install.log
  say "installing keystone and gunicorn from PyPI into $VENV (first time only; about a minute)"
  t=$SECONDS
  { [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"; } >"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; die "cannot create $VENV; log in $LOG" 3; }
  echo '*' > "$VENV/.gitignore"
  if ! timeout 900 "$VENV/bin/pip" install --disable-pip-version-check -q keystone gunicorn >>"$LOG" 2>&1 \
     || ! "$VENV/bin/python" -c 'import keystone.server.wsgi, gunicorn, keystoneauth1, yaml' >>"$LOG" 2>&1; then
    tail -n 20 "$LOG" >&2
    die "installing keystone into $VENV failed; full log in $LOG" 3
  fi
  touch "$STAMP"
  say "installed $("$VENV/bin/pip" show keystone 2>/dev/null | sed -n 's/^Version: /keystone /p') in $((SECONDS - t)) s"
fi

# --- 2. Configuration, keys, database --------------------------------------
chmod 700 "$DIR"
URL=http://127.0.0.1:$PORT/v3
if pid=$(running_pid); then
  ran_on=$(cat "$DIR/port" 2>/dev/null || echo "?")
  [ "$ran_on" = "$PORT" ] || die "the Keystone of $DIR already runs on port $ran_on (gunicorn $pid); stop it with: $0 --stop $DIR"
fi
cat > "$DIR/keystone.conf" <<EOF
# Written by tools/start-keystone.sh; rewritten on each run.
[DEFAULT]
log_file = $DIR/keystone.log
[database]
connection = sqlite:///$DIR/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $DIR/fernet-keys
[fernet_receipts]
key_repository = $DIR/fernet-receipts
[credential]
key_repository = $DIR/credential-keys
EOF
if [ -n "${KEYSTONE_PASSWORD_HASH_ROUNDS:-}" ]; then
  [[ "$KEYSTONE_PASSWORD_HASH_ROUNDS" =~ ^[0-9]+$ ]] || die "bad KEYSTONE_PASSWORD_HASH_ROUNDS" 2
  printf '[identity]\npassword_hash_rounds = %s\n' "$KEYSTONE_PASSWORD_HASH_ROUNDS" >> "$DIR/keystone.conf"
fi
# Keystone parses the process's argv as its own command line: under
# gunicorn that would be gunicorn's options, so the wrapper clears it before
# Keystone is imported. Keystone finds keystone.conf through
# OS_KEYSTONE_CONFIG_DIR.
cat > "$DIR/keystone_wsgi.py" <<'EOF'
"""gunicorn entry point for Keystone (written by tools/start-keystone.sh)."""
import sys

sys.argv = sys.argv[:1]

from keystone.server.wsgi import initialize_public_application  # noqa: E402

application = initialize_public_application()
EOF

if [ -f "$DIR/passwords.env" ]; then
  saved() { sed -n "s/^$1=//p" "$DIR/passwords.env"; }
else
  saved() { :; }
fi
gen() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))'; }
ADMIN_PW=${KEYSTONE_ADMIN_PASSWORD:-$(saved ADMIN)}; ADMIN_PW=${ADMIN_PW:-$(gen)}
SERVICE_PW=${KEYSTONE_SERVICE_PASSWORD:-$(saved SERVICE)}; SERVICE_PW=${SERVICE_PW:-$(gen)}
DEMO_PW=${KEYSTONE_DEMO_PASSWORD:-$(saved DEMO)}; DEMO_PW=${DEMO_PW:-$(gen)}
(umask 077; printf 'ADMIN=%s\nSERVICE=%s\nDEMO=%s\n' "$ADMIN_PW" "$SERVICE_PW" "$DEMO_PW" \
  > "$DIR/passwords.env")

MANAGE_LOG=$DIR/keystone-manage.log
manage() {
  "$VENV/bin/keystone-manage" --config-file "$DIR/keystone.conf" "$@" >>"$MANAGE_LOG" 2>&1 \
    || { tail -n 20 "$MANAGE_LOG" >&2; die "keystone-manage $1 failed; log in $MANAGE_LOG"; }
}
t=$SECONDS
# The schema and the key repositories are independent: make them at once.
manage db_sync &
db_pid=$!
{ manage fernet_setup --keystone-user root --keystone-group root \
  && manage credential_setup --keystone-user root --keystone-group root; } &
keys_pid=$!
wait "$db_pid" || exit 1
wait "$keys_pid" || exit 1
# The password goes through the environment, not the command line.
OS_BOOTSTRAP_PASSWORD=$ADMIN_PW manage bootstrap \
  --bootstrap-admin-url "$URL" --bootstrap-internal-url "$URL" \
  --bootstrap-public-url "$URL" --bootstrap-region-id RegionOne
say "database, keys and admin ready in $DIR ($((SECONDS - t)) s)"

# --- 3. gunicorn ------------------------------------------------------------
if ! running_pid >/dev/null; then
  port_free=$("$VENV/bin/python" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    print("no")
' "$PORT")
  [ -z "$port_free" ] || die "port $PORT on 127.0.0.1 is taken by another process"
  echo "$PORT" > "$DIR/port"
  OS_KEYSTONE_CONFIG_DIR=$DIR "$VENV/bin/gunicorn" --daemon --chdir "$DIR" \
    --bind "127.0.0.1:$PORT" --workers 1 --threads 8 --timeout 120 --graceful-timeout 5 \
    --pid "$PIDFILE" \
    --error-logfile "$DIR/gunicorn.log" --capture-output keystone_wsgi:application
fi
t=$SECONDS
answers() {  # GET URL succeeds (python, not curl: nothing else to install)
  "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "$1" 2>/dev/null
}
deadline=$((SECONDS + 60))
until answers "$URL"; do
  why=""
  [ $SECONDS -lt $deadline ] || why="did not answer at $URL within 60 s"
  if [ $((SECONDS - t)) -ge 5 ] && ! running_pid >/dev/null; then why="gunicorn exited"; fi
  if [ -n "$why" ]; then
    tail -n 20 "$DIR/gunicorn.log" >&2 || true
    die "Keystone $why; logs in $DIR/gunicorn.log and $DIR/keystone.log"
  fi
  sleep 0.25
done
say "Identity v3 answering at $URL"

# --- 4. Projects, users, roles, catalog, credentials files -----------------
KEYSTONE_URL=$URL KEYSTONE_DIR=$DIR KEYSTONE_ADMIN_PASSWORD=$ADMIN_PW \
KEYSTONE_SERVICE_PASSWORD=$SERVICE_PW KEYSTONE_DEMO_PASSWORD=$DEMO_PW \
VIRTSTACK_COMPUTE_URL=http://127.0.0.1:$COMPUTE_PORT/v2.1 \
VIRTSTACK_VOLUME_URL="http://127.0.0.1:$VOLUME_PORT/v3/\$(project_id)s" \
VIRTSTACK_IMAGE_URL=http://127.0.0.1:$IMAGE_PORT \
  "$VENV/bin/python" "$ROOT/tools/keystone_setup.py"

say "ready in $((SECONDS - T0)) s: Keystone at $URL (gunicorn $(cat "$PIDFILE"), logs in $DIR)"
say "credentials: $DIR/clouds.yaml (OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml openstack --os-cloud virtstack-demo ...)"
say "virtstack: virtstack --config-file $DIR/virtstack-keystone.conf up   (stop Keystone: $0 --stop $DIR)"
