#!/usr/bin/env bash
# A real single-node Slurm cluster reached through a real OpenSSH server, all on 127.0.0.1, for the
# slurm source's tests: munged, MariaDB (socket only) + slurmdbd (so sacct works), slurmctld, slurmd
# and an sshd on a free port for an unprivileged user with key auth. Idempotent: a component whose
# pid file names a live process is left alone. Everything lives in $EVALPORT_CLUSTER_DIR
# (default /tmp/evalport-cluster); tests/infra/cluster-down.sh stops exactly what this started.
#
# "Remote" paths: root (the test process) can read every local file, so a job dir path that exists
# here would be read directly (the on-cluster fast path) instead of over SSH. sshd and slurmd
# therefore run in private mount namespaces where $STATE/lustre is a bind mount of
# $STATE/cluster-fs; outside them $STATE/lustre is an empty read-only folder. Paths under
# $STATE/lustre are valid only through ssh/slurm, exactly like a cluster's /lustre on a laptop.
set -euo pipefail

STATE="${EVALPORT_CLUSTER_DIR:-/tmp/evalport-cluster}"
TEST_USER="${EVALPORT_CLUSTER_USER:-evaltest}"
HOST_ALIAS="evalport-cluster"
CLUSTER_NAME="evalport"
start_time=$(date +%s.%N)
# The tests use the cluster only when env.sh exists: it is written last, when everything is up.
rm -f "$STATE/env.sh"

log() { printf '[cluster-up] %s\n' "$*"; }
alive() {  # alive PIDFILE NAME: the pid file names a running NAME (not a zombie, not a reused pid)
  [ -s "$1" ] || return 1
  local pid state
  pid=$(cat "$1")
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != "Z" ] && grep -q "^$2" "/proc/$pid/comm" 2>/dev/null
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_of() {  # a port chosen once per state dir, so restarts keep their addresses
  local f="$STATE/ports/$1"
  [ -s "$f" ] || free_port >"$f"
  cat "$f"
}
wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out waiting for $what; logs in $STATE/log"; tail -n 20 "$STATE"/log/*.log >&2 || true; exit 1
    fi
    sleep 0.2
  done
}

# -- packages (Debian) -------------------------------------------------------------------------
PKGS=(openssh-server openssh-client munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
fi

# -- host name -> 127.0.0.1 (slurm daemons bind to what the node name resolves to) ----------------
NODE="$(hostname -s)"
if [ "$(getent ahostsv4 "$NODE" | awk 'NR==1{print $1}')" != "127.0.0.1" ]; then
  log "adding '127.0.0.1 $NODE' to /etc/hosts"
  echo "127.0.0.1 $NODE" >>/etc/hosts
fi

# -- user and folders ---------------------------------------------------------------------------
if ! id "$TEST_USER" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$TEST_USER"
fi
usermod -p '*' "$TEST_USER"  # a locked password makes sshd (UsePAM no) refuse even key auth
mkdir -p "$STATE"/{ssh,munge,mysql,slurm/state,slurm/spool,run,log,ports,cluster-fs,lustre}
chmod 755 "$STATE" "$STATE/slurm" "$STATE/run"
mkdir -p "$STATE/cluster-fs/$TEST_USER"
chown "$TEST_USER:" "$STATE/cluster-fs/$TEST_USER"
chmod 700 "$STATE/cluster-fs/$TEST_USER"
chmod 555 "$STATE/lustre"  # the empty mount point: nothing can be written there by mistake

SSH_PORT=$(port_of ssh)
CTLD_PORT=$(port_of slurmctld)
SLURMD_PORT=$(port_of slurmd)
DBD_PORT=$(port_of slurmdbd)
MUNGE_SOCKET="$STATE/munge/munge.socket.2"
MYSQL_SOCKET="$STATE/mysql/mysqld.sock"
SLURM_CONF="$STATE/slurm/slurm.conf"
export SLURM_CONF

# -- munge --------------------------------------------------------------------------------------
if [ ! -s "$STATE/munge/munge.key" ]; then
  dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$STATE/munge/munge.key"
fi
chmod 755 "$STATE/munge"
if ! alive "$STATE/run/munged.pid" munged; then
  rm -f "$MUNGE_SOCKET"
  munged --force --key-file="$STATE/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/seed"
  wait_for 10 munged test -S "$MUNGE_SOCKET"
fi

# -- MariaDB (no networking: socket only) ---------------------------------------------------------
if [ ! -d "$STATE/mysql/data/mysql" ]; then
  mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql/data" \
    --auth-root-authentication-method=socket >"$STATE/log/mariadb-install.log" 2>&1
fi
if ! alive "$STATE/run/mariadb.pid" mariadbd; then
  (setsid mariadbd --no-defaults --user=root --datadir="$STATE/mysql/data" --skip-networking \
    --socket="$MYSQL_SOCKET" --pid-file="$STATE/run/mariadb.pid" --log-error="$STATE/log/mariadb.log" \
    --innodb-buffer-pool-size=32M --skip-log-bin </dev/null >/dev/null 2>&1 &)
  wait_for 30 mariadb mariadb --no-defaults --socket="$MYSQL_SOCKET" -e 'select 1'
fi

# -- slurm configuration ------------------------------------------------------------------------
MEM=$(awk '/MemTotal/{print int($2/1024/2)}' /proc/meminfo)
cat >"$SLURM_CONF" <<EOF
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$STATE/slurm/state
SlurmdSpoolDir=$STATE/slurm/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SchedulerType=sched/builtin
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$STATE/slurm/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
chmod 600 "$STATE/slurm/slurmdbd.conf"
chmod 644 "$SLURM_CONF"

# slurmdbd finds MariaDB's socket through libmariadb's MYSQL_UNIX_PORT.
if ! alive "$STATE/run/slurmdbd.pid" slurmdbd; then
  MYSQL_UNIX_PORT="$MYSQL_SOCKET" slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
  wait_for 30 slurmdbd sacctmgr -n list cluster
fi
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER_NAME"; then
  sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null
fi

if ! alive "$STATE/run/slurmctld.pid" slurmctld; then
  slurmctld -f "$SLURM_CONF"
  wait_for 30 slurmctld scontrol ping
fi

# slurmd (and so every batch job) sees $STATE/lustre as the cluster's file system.
in_cluster_ns() {
  unshare --mount --propagation private sh -c \
    'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$STATE/cluster-fs" "$STATE/lustre" "$@"
}
if ! alive "$STATE/run/slurmd.pid" slurmd; then
  in_cluster_ns slurmd -f "$SLURM_CONF"
fi
node_idle() { sinfo -h -n "$NODE" -o %t | grep -Eq '^(idle|mix|alloc)'; }
wait_for 30 "the node to be idle" node_idle

# -- sshd ---------------------------------------------------------------------------------------
[ -s "$STATE/ssh/host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/ssh/host_ed25519_key"
[ -s "$STATE/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C evalport-tests -f "$STATE/ssh/id_ed25519"
cp "$STATE/ssh/id_ed25519.pub" "$STATE/ssh/authorized_keys"
chmod 644 "$STATE/ssh/authorized_keys"
cat >"$STATE/ssh/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $STATE/ssh/host_ed25519_key
PidFile $STATE/run/sshd.pid
AuthorizedKeysFile $STATE/ssh/authorized_keys
AllowUsers $TEST_USER
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 100
MaxStartups 100:30:200
X11Forwarding no
AllowTcpForwarding no
SetEnv SLURM_CONF=$SLURM_CONF
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
echo "$HOST_ALIAS $(cut -d' ' -f1,2 "$STATE/ssh/host_ed25519_key.pub")" >"$STATE/ssh/known_hosts"
cat >"$STATE/ssh/config" <<EOF
Host $HOST_ALIAS
  HostName 127.0.0.1
  Port $SSH_PORT
  User $TEST_USER
  IdentityFile $STATE/ssh/id_ed25519
  IdentitiesOnly yes
  HostKeyAlias $HOST_ALIAS
  UserKnownHostsFile $STATE/ssh/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
EOF
mkdir -p /run/sshd
if ! alive "$STATE/run/sshd.pid" sshd; then
  in_cluster_ns /usr/sbin/sshd -f "$STATE/ssh/sshd_config" -E "$STATE/log/sshd.log"
fi
wait_for 15 sshd ssh -F "$STATE/ssh/config" -o BatchMode=yes "$HOST_ALIAS" true

cat >"$STATE/env.sh" <<EOF
# Written by tests/infra/cluster-up.sh; read by tests/support/slurm_cluster.py.
export EVALPORT_CLUSTER_DIR='$STATE'
export EVALPORT_CLUSTER_HOST='$HOST_ALIAS'
export EVALPORT_CLUSTER_USER='$TEST_USER'
export EVALPORT_CLUSTER_PORT='$SSH_PORT'
export EVALPORT_CLUSTER_KEY='$STATE/ssh/id_ed25519'
export EVALPORT_CLUSTER_FS='$STATE/cluster-fs'
export EVALPORT_CLUSTER_REMOTE_ROOT='$STATE/lustre'
export EVALPORT_SSH_CONFIG='$STATE/ssh/config'
export EVALPORT_SSH_OPTIONS='-F $STATE/ssh/config'
export SLURM_CONF='$SLURM_CONF'
EOF
log "up in $(python3 -c "import time; print(round(time.time() - $start_time, 1))") s: ssh $HOST_ALIAS (127.0.0.1:$SSH_PORT), env in $STATE/env.sh"
