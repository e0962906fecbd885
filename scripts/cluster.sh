#!/usr/bin/env bash
# cluster.sh: a multi-node Docker Swarm on one machine, for the multi-node
# end-to-end suite (e2e/cluster, `make e2e-cluster`).
#
#   scripts/cluster.sh up [N]     N nodes (default 3): sgc-1 the manager, the
#                                 others workers labelled swarmgate.edge=true
#   scripts/cluster.sh down       stop every node and remove all it made
#   scripts/cluster.sh env        export lines: SWARMGATE_CLUSTER_DOCKER (the
#                                 manager's socket), SWARMGATE_CLUSTER_NODES
#                                 (name=address pairs), SWARMGATE_CLUSTER_SCRIPT
#   scripts/cluster.sh status     each node's state as the manager sees it
#   scripts/cluster.sh node NAME unplug|plug   pull / put back its cable
#   scripts/cluster.sh node NAME kill|start    SIGKILL the whole node / boot it
#   scripts/cluster.sh node NAME cut|mend PEER drop / restore all traffic
#                                 between NAME and PEER only, on the bridge
#                                 (a partial partition)
#   scripts/cluster.sh load IMAGE|FILE.tar     load an image into every node
#
# Each node is its own containerd and dockerd in its own network namespace
# (sgc-1 ...), with its own config file, data root, exec root and socket,
# under a UTS namespace of its own with the node's name as hostname. The nodes
# are joined by a bridge that lives in a namespace of its own (sgc-br): on a
# bridge in the host namespace, the host's bridge-nf-call-iptables=1 and the
# FORWARD DROP policy of the host's dockerd drop node-to-node traffic. The
# host reaches the nodes through one veth into that bridge (sgc-host,
# SUBNET.254), so a load balancer on the host can front the edges' host-mode
# ports. The nodes' default route is unreachable: nothing leaves the subnet.
#
# Why each step is done the way it is (issue 11):
# - nsenter --net, not `ip netns exec`: the latter remounts /sys and hides
#   the cgroup v1 mounts ("Devices cgroup isn't mounted").
# - --config-file per node, with deprecated-key-path for a per-node key.json
#   (the flag form is rejected).
# - No IPVS in this kernel: services use dnsrr and host-mode ports. No
#   registry: images are loaded into each node (`load`), services are created
#   with --no-resolve-image, and DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 stops
#   each task start from looking the image up in a registry.
# - A killed node's containerd shims leave their sockets in /run/containerd/s,
#   which the host shares: exactly the ones bound in the node's namespace are
#   removed.
# - The swarm's dispatcher heartbeat is 1 s, so a lost node shows Down after
#   3-5 s instead of 10-14 s.
#
# It never talks to the host's own dockerd (/var/run/docker.sock) except to
# read an image for `load` that no node has. Every wait is bounded; every
# failure says what failed and shows the end of the node's log.
set -euo pipefail

SUBNET=${SWARMGATE_CLUSTER_SUBNET:-192.168.177}  # /24; node i is SUBNET.i
RUN=${SWARMGATE_CLUSTER_RUN:-/run/swarmgate-cluster}    # sockets, pid files, configs, logs
DATA=${SWARMGATE_CLUSTER_DATA:-/var/lib/swarmgate-cluster} # data roots
PREFIX=sgc           # node names sgc-1 ..., namespaces the same, bridge ns sgc-br
BRNS=$PREFIX-br
HOSTIF=$PREFIX-host
WAIT=${SWARMGATE_CLUSTER_WAIT:-60} # seconds any one wait may take

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, dockerd)"; }

node_name() { echo "$PREFIX-$1"; }
node_dir() { echo "$RUN/$1"; }
node_sock() { echo "$RUN/$1/docker.sock"; }
node_addr() { echo "$SUBNET.${1#"$PREFIX"-}"; }

# nodes lists the nodes of the running (or half-made) cluster, in order.
nodes() {
  [ -d "$RUN" ] || return 0
  find "$RUN" -mindepth 1 -maxdepth 1 -type d -name "$PREFIX-[0-9]*" -printf '%f\n' | sort -t- -k2 -n
}

# nd runs the docker CLI against one node's engine, bounded in time.
nd() {
  local n=$1; shift
  DOCKER_HOST="unix://$(node_sock "$n")" timeout 60 docker "$@"
}

# until_ok waits at most WAIT seconds for a command to succeed.
until_ok() {
  local what=$1; shift
  local deadline=$((SECONDS + WAIT))
  waited_for_dead=0
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
  [ "$waited_for_dead" = 0 ] || { log "$what: the process exited"; return 1; }
  log "$what after $((SECONDS - start))s"
}

# alive_and: $pid is running, then the command's status; until_ok stops
# waiting once the process has died.
alive_and() { pid_alive "$pid" || { waited_for_dead=1; return 0; }; "$@"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null || true; }

check_tools() {
  local t
  for t in ip nsenter unshare dockerd containerd containerd-shim-runc-v2 docker iptables; do
    command -v "$t" >/dev/null 2>&1 || die "$t is not installed (scripts/docker-up.sh installs docker.io)"
  done
}

# ---- the network -----------------------------------------------------------

net_up() {
  local count=$1 i n
  ip netns list | grep -qx "$BRNS\( .*\)\?" || ip netns add "$BRNS"
  ip -n "$BRNS" link show br0 >/dev/null 2>&1 || ip -n "$BRNS" link add br0 type bridge
  ip -n "$BRNS" link set lo up
  ip -n "$BRNS" link set br0 up
  if ! ip link show "$HOSTIF" >/dev/null 2>&1; then
    ip link add "$HOSTIF" type veth peer name vh netns "$BRNS"
    ip -n "$BRNS" link set vh master br0 up
    ip addr add "$SUBNET.254/24" dev "$HOSTIF"
    ip link set "$HOSTIF" up
  fi
  for i in $(seq 1 "$count"); do
    n=$(node_name "$i")
    ip netns list | grep -q "^$n\b" || ip netns add "$n"
    if ! ip -n "$n" link show eth0 >/dev/null 2>&1; then
      ip -n "$BRNS" link add "v$i" type veth peer name eth0 netns "$n"
      ip -n "$BRNS" link set "v$i" master br0 up
      ip -n "$n" addr add "$(node_addr "$n")/24" dev eth0
      ip -n "$n" link set lo up
      ip -n "$n" link set eth0 up
      # Nothing leaves the test subnet: a registry or DNS lookup fails at
      # once instead of waiting for a timeout.
      ip -n "$n" route add unreachable default
    fi
  done
}

net_down() {
  ip link del "$HOSTIF" 2>/dev/null || true
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep -x "$PREFIX-\([0-9]*\|br\)" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

# ---- one node --------------------------------------------------------------

write_config() {
  local n=$1 d
  d=$(node_dir "$n")
  mkdir -p "$d" "$DATA/$n"
  cat >"$d/containerd.toml" <<EOF
version = 2
root = "$DATA/$n/containerd"
state = "$d/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DATA/$n/opt"
EOF
  cat >"$d/daemon.json" <<EOF
{
  "hosts": ["unix://$d/docker.sock"],
  "data-root": "$DATA/$n/docker",
  "exec-root": "$d/exec",
  "pidfile": "$d/exec/dockerd.pid",
  "containerd": "$d/containerd.sock",
  "deprecated-key-path": "$d/key.json",
  "storage-driver": "overlay2",
  "log-level": "warn",
  "log-driver": "json-file",
  "log-opts": {"max-size": "5m", "max-file": "1"}
}
EOF
}

# in_node runs a command in node n's network namespace and a UTS namespace
# whose hostname is the node's name, detached, its output to a log file.
in_node() {
  local n=$1 logf=$2; shift 2
  setsid nsenter --net="/run/netns/$n" unshare --uts sh -c 'hostname "$0"; exec "$@"' "$n" "$@" \
    >>"$logf" 2>&1 </dev/null 9>&- &
  echo $!
}

node_start() {
  local n=$1 d pid
  d=$(node_dir "$n")
  [ -f "$d/daemon.json" ] || write_config "$n"
  if ! pid_alive "$(pid_of "$d/containerd.pid")"; then
    rm -f "$d/containerd.sock"
    pid=$(in_node "$n" "$d/containerd.log" containerd --config "$d/containerd.toml")
    echo "$pid" >"$d/containerd.pid"
    local start=$SECONDS
    until_ok "$n: containerd up" alive_and test -S "$d/containerd.sock" ||
      { tail -n 20 "$d/containerd.log" >&2; die "$n: containerd did not start within ${WAIT}s"; }
  fi
  if ! pid_alive "$(pid_of "$d/dockerd.pid")"; then
    rm -f "$d/docker.sock" "$d/exec/dockerd.pid"
    pid=$(in_node "$n" "$d/dockerd.log" env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
      dockerd --config-file "$d/daemon.json")
    echo "$pid" >"$d/dockerd.pid"
    local start=$SECONDS
    until_ok "$n: dockerd up" alive_and nd "$n" version ||
      { tail -n 30 "$d/dockerd.log" >&2; die "$n: dockerd did not answer within ${WAIT}s"; }
  fi
}

# shim_sockets lists the containerd shim sockets bound in node n's network
# namespace: exactly that node's, among all of /run/containerd/s.
shim_sockets() {
  [ -e "/run/netns/$1" ] || return 0
  nsenter --net="/run/netns/$1" awk '$8 ~ /^\/run\/containerd\/s\// {print $8}' /proc/net/unix 2>/dev/null | sort -u
}

# shim_pids lists the shims of node n's containerd (they name its address).
shim_pids() {
  local sock p
  sock="$(node_dir "$1")/containerd.sock"
  for p in /proc/[0-9]*; do
    tr "\\0" " " 2>/dev/null <"$p/cmdline" | grep -q -- "-address $sock " && echo "${p#/proc/}"
  done
  return 0
}

# descendants lists every process under the given pids (their containers).
descendants() {
  local all
  all=$(ps -e -o pid=,ppid=)
  local queue=("$@") out=() p c
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    for c in $(awk -v p="$p" '$2 == p {print $1}' <<<"$all"); do
      out+=("$c"); queue+=("$c")
    done
  done
  echo "${out[@]:-}"
}

# node_kill SIGKILLs the node's dockerd, containerd, shims and containers at
# once, as a power loss would, removes the shim sockets they leave and clears
# the node's run state as a reboot would (its data root stays).
node_kill() {
  local n=$1 d socks shims procs
  d=$(node_dir "$n")
  socks=$(shim_sockets "$n")
  shims=$(shim_pids "$n")
  # shellcheck disable=SC2086
  procs="$(pid_of "$d/dockerd.pid") $(pid_of "$d/containerd.pid") $shims $(descendants $shims)"
  # shellcheck disable=SC2086
  kill -KILL $procs 2>/dev/null || true
  # shellcheck disable=SC2086
  for p in $procs; do
    local deadline=$((SECONDS + 10))
    while pid_alive "$p" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  done
  # shellcheck disable=SC2086
  [ -z "$socks" ] || rm -f $socks
  rm -f "$d/dockerd.pid" "$d/containerd.pid" "$d/docker.sock" "$d/containerd.sock"
  unmount_under "$d"
  # What a reboot clears (/run is a tmpfs): the exec root and containerd's
  # state. Left, the files that held the overlay sandboxes' namespaces
  # make the restarted dockerd fail to set up the overlay networks.
  rm -rf "$d/exec" "$d/containerd"
}

# unmount_under unmounts everything mounted under a directory (overlay
# layers, network namespace files a killed dockerd left), deepest first.
unmount_under() {
  local m
  for m in $(awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

# ---- the swarm -------------------------------------------------------------

node_ready_count() {
  nd "$PREFIX-1" node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true
}

cluster_healthy() {
  local want=$1 n
  [ "$(nodes | wc -l)" = "$want" ] || return 1
  for n in $(nodes); do nd "$n" version >/dev/null 2>&1 || return 1; done
  [ "$(node_ready_count)" = "$want" ]
}

cmd_up() {
  local count=${1:-3} start=$SECONDS n i token
  [[ $count =~ ^[1-9][0-9]?$ ]] || die "up: node count must be 1-99, got '$count'"
  need_root; check_tools
  exec 9>"$RUN.lock"; flock -w "$WAIT" 9 || die "another cluster.sh holds $RUN.lock"
  if cluster_healthy "$count"; then
    log "already up: $count nodes Ready"
    return 0
  fi
  if [ -n "$(nodes)" ] || ip netns list | grep -q "^$BRNS\b"; then
    log "a cluster that is not $count Ready nodes is here: removing it first"
    cmd_down_locked
  fi
  mkdir -p "$RUN" "$DATA"
  net_up "$count"
  for i in $(seq 1 "$count"); do write_config "$(node_name "$i")"; done
  for i in $(seq 1 "$count"); do node_start "$(node_name "$i")"; done
  local m=$PREFIX-1
  nd "$m" swarm init --advertise-addr "$(node_addr "$m")" --listen-addr "$(node_addr "$m"):2377" \
    --dispatcher-heartbeat 1s >/dev/null || die "swarm init on $m failed"
  token=$(nd "$m" swarm join-token -q worker)
  for i in $(seq 2 "$count"); do
    n=$(node_name "$i")
    nd "$n" swarm join --token "$token" --advertise-addr "$(node_addr "$n")" \
      --listen-addr "$(node_addr "$n"):2377" "$(node_addr "$m"):2377" >/dev/null ||
      die "$n could not join the swarm"
  done
  until_ok "$count nodes Ready" test "$(node_ready_count)" = "$count" || {
    nd "$m" node ls >&2 || true
    die "the nodes were not all Ready within ${WAIT}s"
  }
  for i in $(seq 2 "$count"); do
    nd "$m" node update --label-add swarmgate.edge=true "$(node_name "$i")" >/dev/null
  done
  log "up: $count nodes in $((SECONDS - start))s (manager $m at $(node_addr "$m"))"
}

cmd_down_locked() {
  local n
  # A test cluster keeps nothing: every node is killed, as `node kill` does.
  for n in $(nodes); do node_kill "$n"; done
  net_down
  for n in $(nodes); do rm -rf "$(node_dir "$n")"; done
  rm -f "$RUN/cuts"
  unmount_under "$DATA"
  rm -rf "$DATA"
  rmdir "$RUN" 2>/dev/null || true
}

cmd_down() {
  need_root
  mkdir -p "$(dirname "$RUN")"
  exec 9>"$RUN.lock"; flock -w "$WAIT" 9 || die "another cluster.sh holds $RUN.lock"
  cmd_down_locked
  log "down"
}

cmd_env() {
  local n pairs=()
  [ -n "$(nodes)" ] || die "no cluster (run: scripts/cluster.sh up)"
  for n in $(nodes); do pairs+=("$n=$(node_addr "$n")"); done
  echo "export SWARMGATE_CLUSTER_DOCKER=unix://$(node_sock "$PREFIX-1")"
  echo "export SWARMGATE_CLUSTER_NODES=$(IFS=,; echo "${pairs[*]}")"
  echo "export SWARMGATE_CLUSTER_SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
}

cmd_status() {
  nd "$PREFIX-1" node ls
}

# apply_cuts makes the bridge drop IP traffic between every pair of nodes
# listed in $RUN/cuts (one "A B" per line), on the wire: Swarm's own traffic,
# the overlay's VXLAN and everything else between them. It is done in the
# bridge's namespace with nft's bridge family, so the nodes' own firewalls
# (which their dockerd manages) are left alone.
apply_cuts() {
  local a b rules=""
  touch "$RUN/cuts"
  while read -r a b; do
    [ -n "$a" ] || continue
    rules+="add rule bridge $PREFIX forward ip saddr $(node_addr "$a") ip daddr $(node_addr "$b") drop
add rule bridge $PREFIX forward ip saddr $(node_addr "$b") ip daddr $(node_addr "$a") drop
"
  done <"$RUN/cuts"
  nsenter --net="/run/netns/$BRNS" nft -f - <<EOF
table bridge $PREFIX {
  chain forward { type filter hook forward priority 0; policy accept; }
}
flush chain bridge $PREFIX forward
$rules
EOF
}

cmd_node() {
  local n=${1:-} action=${2:-} i
  [ -n "$n" ] && [ -n "$action" ] || die "usage: cluster.sh node NAME unplug|plug|kill|start|cut PEER|mend PEER"
  need_root
  [ -d "$(node_dir "$n")" ] || die "no node $n (nodes: $(nodes | tr '\n' ' '))"
  i=${n#"$PREFIX"-}
  case $action in
    unplug) ip -n "$BRNS" link set "v$i" down ;;
    plug) ip -n "$BRNS" link set "v$i" up ;;
    kill) node_kill "$n" ;;
    start) node_start "$n" ;;
    cut | mend)
      local peer=${3:-} rest
      [ -n "$peer" ] && [ -d "$(node_dir "$peer")" ] || die "$action: no peer node '$peer'"
      command -v nft >/dev/null 2>&1 || die "$action needs nft (apt-get install nftables)"
      touch "$RUN/cuts"
      rest=$(grep -vx "$n $peer" "$RUN/cuts" | grep -vx "$peer $n" || true)
      { [ -z "$rest" ] || echo "$rest"; [ "$action" = mend ] || echo "$n $peer"; } >"$RUN/cuts"
      apply_cuts || die "$action: nft failed"
      ;;
    *) die "node: unknown action '$action'" ;;
  esac
  log "$n: $action ${3:-}"
}

cmd_load() {
  local img=${1:-} n m=$PREFIX-1 tmp
  [ -n "$img" ] || die "usage: cluster.sh load IMAGE|FILE.tar"
  [ -n "$(nodes)" ] || die "no cluster (run: scripts/cluster.sh up)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  if [ -f "$img" ]; then
    cp "$img" "$tmp/image.tar"
  elif nd "$m" image inspect "$img" >/dev/null 2>&1; then
    nd "$m" save -o "$tmp/image.tar" "$img"
  else
    # The host's engine is only read, and only for an image no node has.
    timeout 120 docker save -o "$tmp/image.tar" "$img" || die "load: no image $img on $m or the host"
  fi
  for n in $(nodes); do
    nd "$n" load -q -i "$tmp/image.tar" >/dev/null || die "load: $n did not take $img"
  done
  log "loaded $img into $(nodes | wc -l) nodes"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  node) shift; cmd_node "$@" ;;
  load) shift; cmd_load "$@" ;;
  *) awk 'NR > 1 && /^# Each node/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0" >&2; exit 2 ;;
esac
