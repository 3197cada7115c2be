#!/usr/bin/env bash
# Starts PostgreSQL, MariaDB and RabbitMQ on loopback when they are installed
# but not running (no systemd here: the same commands the machine uses at
# boot). Waits until each answers, with a deadline.
set -uo pipefail

say() { printf 'services: %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- 3<&-; }

wait_port() {  # name port seconds
  local deadline=$((SECONDS + $3))
  while ! port_open "$2"; do
    if [ $SECONDS -ge $deadline ]; then say "$1 did not come up on port $2"; return 1; fi
    read -r -t 0.5 < /dev/zero 2>/dev/null || true
  done
  say "$1 is up on 127.0.0.1:$2"
}

if ! port_open 5432 && command -v pg_ctlcluster >/dev/null; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port PostgreSQL 5432 60
fi
if ! port_open 3306 && [ -x /usr/sbin/mariadbd ]; then
  say "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_port MariaDB 3306 60
fi
if ! port_open 5672 && command -v rabbitmq-server >/dev/null; then
  say "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_port RabbitMQ 5672 120
fi
exit 0
