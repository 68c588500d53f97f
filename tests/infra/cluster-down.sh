#!/usr/bin/env bash
# Stops what tests/infra/cluster-up.sh started, by pid file, newest first; idempotent.
# Pass --purge to also delete the state directory (keys, database, logs).
set -uo pipefail

STATE="${EVALPORT_CLUSTER_DIR:-/tmp/evalport-cluster}"
[ -d "$STATE/run" ] || exit 0

stop() {  # stop NAME: TERM the pid in $STATE/run/NAME.pid, wait up to 10 s, then KILL
  local pidfile="$STATE/run/$1.pid" pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    echo "[cluster-down] stopped $1 ($pid)"
  fi
  rm -f "$pidfile"
}

for name in sshd slurmd slurmctld slurmdbd mariadb munged; do stop "$name"; done
rm -f "$STATE/env.sh"
if [ "${1:-}" = "--purge" ]; then rm -rf "$STATE"; fi
exit 0
