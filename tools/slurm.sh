#!/bin/bash
# Single-node Slurm on this machine, for the queue integration tests and for trying
# Scipion's queue by hand:   tools/slurm.sh start | stop | status
#
# start: installs Debian's slurm-wlm + munge when missing (root + apt), writes
#        /etc/slurm/slurm.conf and gres.conf (fake GPUs: gpu:2, /dev/null links, so
#        --gres=gpu:N jobs get CUDA_VISIBLE_DEVICES), starts munged, slurmctld, slurmd
#        (each only when not already running) and waits until the node answers idle.
# stop:  stops the daemons this script started (pid files under $SCNET_SLURM_DIR).
# Works without systemd (containers). Every sinfo/squeue call has a timeout: a dead
# controller makes them hang for minutes. See docs/cluster.md.
set -uo pipefail

STATE=${SCNET_SLURM_DIR:-/var/tmp/scnet-slurm}
NODE=$(hostname -s)
CPUS=${SCNET_SLURM_CPUS:-$(nproc)}
GPUS=${SCNET_SLURM_FAKE_GPUS:-2}
PARTITION=${SCNET_SLURM_PARTITION:-debug}
WAIT=${SCNET_SLURM_WAIT:-60}
CONF=/etc/slurm/slurm.conf

log() { echo "[slurm] $*" >&2; }
die() { echo "[slurm] ERROR: $*" >&2; exit 1; }

# alive PID: the container's PID 1 does not reap, so a killed daemon stays a zombie
alive() {
    local pid=$1 st
    [[ -n "$pid" && -r /proc/$pid/stat ]] || return 1
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ "$st" != Z && "$st" != X ]]
}
pidof_file() { [[ -s "$1" ]] && cat "$1"; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
       && command -v sbatch >/dev/null; then
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "slurm-wlm/munge are not installed and this is not root: ask an admin for \`apt-get install slurm-wlm munge\`."
    local t0=$SECONDS
    log "installing slurm-wlm + munge (apt-get) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null \
        && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
    log "installed in $((SECONDS - t0)) s"
}

start_munge() {
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munge does not answer (munge -n | unmunge)"
}

write_conf() {
    local mem
    mem=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)
    mkdir -p /etc/slurm "$STATE"/{ctld,spool,log,gpu}
    local gres_line="" gresTypes=""
    if (( GPUS > 0 )); then
        for ((i = 0; i < GPUS; i++)); do ln -sfn /dev/null "$STATE/gpu/nvidia$i"; done
        gresTypes="GresTypes=gpu"
        gres_line="Gres=gpu:$GPUS"
        echo "Name=gpu File=$STATE/gpu/nvidia[0-$((GPUS - 1))]" > /etc/slurm/gres.conf.new
    else
        : > /etc/slurm/gres.conf.new
    fi
    cat > "$CONF.new" <<CONF
# written by scipion-em-scnet tools/slurm.sh (single-node test cluster)
ClusterName=scnet
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
PropagatePrioProcess=1
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=30
KillWait=5
$gresTypes
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem $gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
    # no cgroup.conf: Slurm 22.05 has no CgroupPlugin=disabled (slurmd dies); without
    # the file linuxproc + task/none never create a cgroup.
    rm -f /etc/slurm/cgroup.conf
    local changed=0
    cmp -s "$CONF.new" "$CONF" || { mv "$CONF.new" "$CONF"; changed=1; }
    cmp -s /etc/slurm/gres.conf.new /etc/slurm/gres.conf || { mv /etc/slurm/gres.conf.new /etc/slurm/gres.conf; changed=1; }
    rm -f "$CONF.new" /etc/slurm/gres.conf.new
    return $((1 - changed))   # 0 = configuration changed
}

node_state() { timeout 3 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1; }

start() {
    local t0=$SECONDS
    install
    local t1=$SECONDS
    start_munge
    local restart=0
    write_conf && restart=1
    local ctld slurmd
    ctld=$(pidof_file "$STATE/slurmctld.pid"); slurmd=$(pidof_file "$STATE/slurmd.pid")
    if (( restart )) && { alive "$ctld" || alive "$slurmd"; }; then
        log "configuration changed: restarting the daemons"
        stop_daemons; ctld=""; slurmd=""
    fi
    if ! alive "$ctld"; then
        slurmctld -i >>"$STATE/log/start.log" 2>&1 || die "slurmctld did not start; see $STATE/log/slurmctld.log"
    fi
    if ! alive "$slurmd"; then
        slurmd -N "$NODE" >>"$STATE/log/start.log" 2>&1 || die "slurmd did not start; see $STATE/log/slurmd.log"
    fi
    local st="" deadline=$((SECONDS + WAIT))
    while (( SECONDS < deadline )); do
        st=$(node_state)
        case "$st" in
            idle|mixed|allocated|completing) break ;;
            down*|drain*|*drained*) timeout 3 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 ;;
        esac
        sleep 0.3
    done
    case "$st" in
        idle|mixed|allocated|completing)
            log "node $NODE $st (${CPUS} CPUs, gpu:${GPUS}); install check $((t1 - t0)) s, start $((SECONDS - t1)) s" ;;
        *) die "node $NODE is '${st:-not answering}' after ${WAIT} s; see $STATE/log/slurmctld.log and slurmd.log" ;;
    esac
}

stop_one() {
    local name=$1 pid
    pid=$(pidof_file "$STATE/$name.pid")
    if alive "$pid"; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -9 "$pid" 2>/dev/null
        log "$name stopped"
    fi
    rm -f "$STATE/$name.pid"
}

stop_daemons() { stop_one slurmd; stop_one slurmctld; }

stop() {
    stop_daemons
    local mpid
    mpid=$(pidof_file /run/munge/munged.pid)
    if alive "$mpid"; then kill "$mpid" 2>/dev/null; log "munged stopped"; fi
}

status() {
    local ok=0
    for n in slurmctld slurmd; do
        if alive "$(pidof_file "$STATE/$n.pid")"; then echo "$n: running"; else echo "$n: stopped"; ok=1; fi
    done
    local st; st=$(node_state)
    echo "node $NODE: ${st:-no answer}"
    [[ $ok -eq 0 && -n "$st" ]]
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
