#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback, made from the installed `rabbitmq-server`:
#
#   scripts/rabbitmq-cluster.sh start            # start (and on first start, cluster) the three nodes
#   scripts/rabbitmq-cluster.sh status           # each node's state, the cluster's members, the URLs
#   scripts/rabbitmq-cluster.sh urls             # SALESWIRE_RABBIT_URLS for the services (one line)
#   scripts/rabbitmq-cluster.sh stop             # stop the three nodes (their data stays)
#   scripts/rabbitmq-cluster.sh node-start N     # start node N (1..3) again, e.g. after a kill -9
#   scripts/rabbitmq-cluster.sh node-pid N       # pid of node N's Erlang VM (beam.smp)
#   scripts/rabbitmq-cluster.sh remove           # stop and delete the data of the three nodes
#
# Node names are "<prefix>-1@localhost" …; AMQP ports are given, each node's Erlang distribution
# port is its AMQP port + 20000. Every node runs as the `rabbitmq` user (Debian's wrapper switches to
# it), so each node's config, data and log folders belong to that user; the nodes share that user's
# Erlang cookie (/var/lib/rabbitmq/.erlang.cookie), which is what lets them form one cluster.
# The node at 127.0.0.1:5672 (the machine's shared broker) is never started, stopped or joined.
#
# Environment (all optional):
#   SALESWIRE_CLUSTER_PREFIX  node name prefix          (default sw-cluster)
#   SALESWIRE_CLUSTER_PORTS   three AMQP ports, commas  (default 5681,5682,5683)
#   SALESWIRE_CLUSTER_DIR     where the nodes keep data (default /tmp/saleswire-rabbitmq-cluster)
set -euo pipefail

PREFIX=${SALESWIRE_CLUSTER_PREFIX:-sw-cluster}
IFS=, read -r -a PORTS <<<"${SALESWIRE_CLUSTER_PORTS:-5681,5682,5683}"
BASE=${SALESWIRE_CLUSTER_DIR:-/tmp/saleswire-rabbitmq-cluster}
START_TIMEOUT=${SALESWIRE_CLUSTER_START_TIMEOUT:-90}

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }
[[ ${#PORTS[@]} == 3 ]] || die "SALESWIRE_CLUSTER_PORTS must name three ports, got '${SALESWIRE_CLUSTER_PORTS:-}'"
for port in "${PORTS[@]}"; do
  [[ $port =~ ^[0-9]+$ ]] && ((port != 5672 && port + 20000 <= 65535)) \
    || die "port '$port' is not usable (5672 is the shared broker's; port + 20000 must be a port)"
done
command -v rabbitmq-server >/dev/null || die "rabbitmq-server is not installed"

node_name() { echo "$PREFIX-$1@localhost"; }
node_port() { echo "${PORTS[$(($1 - 1))]}"; }
node_dir() { echo "$BASE/$PREFIX-$1"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ctl() { rabbitmqctl -q -n "$(node_name "$1")" "${@:2}"; }

prepare_node() {
  local n=$1 dir port
  dir=$(node_dir "$n")
  port=$(node_port "$n")
  mkdir -p "$dir/mnesia" "$dir/log"
  # The system-wide rabbitmq.conf pins the listener to 5672, so each node gets a config of its own.
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$port
loopback_users = none
## Of three nodes, a node that sees itself in the minority stops serving rather than diverging.
cluster_partition_handling = pause_minority
disk_free_limit.absolute = 200MB
## A node started on empty data joins node 1 as it boots (RabbitMQ's own peer discovery): no
## stop_app / join_cluster / start_app round after the fact, which cost a second boot per node.
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = $(node_name 1)
EOF
  echo "[]." >"$dir/enabled_plugins"
  chmod 755 "$BASE" "$dir"
  chown -R rabbitmq:rabbitmq "$dir"
}

start_node() {
  local n=$1 name port dir
  name=$(node_name "$n")
  port=$(node_port "$n")
  dir=$(node_dir "$n")
  if port_open "$port"; then
    ctl "$n" await_startup >/dev/null 2>&1 && return 0
    die "port $port is taken by something that is not node $name"
  fi
  prepare_node "$n"
  # Schedulers that sleep instead of spinning when idle: three nodes share a small machine.
  RABBITMQ_NODENAME=$name RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$dir/beam.pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
    rabbitmq-server -detached >/dev/null 2>&1 || true
  local waited=0
  until port_open "$port"; do
    sleep 0.25
    waited=$((waited + 1))
    ((waited < START_TIMEOUT * 4)) || die "node $name did not listen on $port within ${START_TIMEOUT}s: $(tail -c 2000 "$dir/log/$name.log" 2>/dev/null)"
  done
  # The AMQP listener opens at the end of the boot: the node takes clients now. (No
  # `rabbitmqctl await_startup` after it: one more CLI VM, seconds on a busy machine.)
}

member_of_cluster() {  # is node $1 already clustered with node 1?
  ctl "$1" cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name 1)\""
}

start() {
  # Node 1 first, so that nodes 2 and 3, started together next, find it and join it as they
  # boot (three nodes started at once on empty data may each find no peer and stay alone).
  start_node 1
  for n in 2 3; do start_node "$n" & done
  wait
  local joins=()
  for n in 2 3; do  # data from before peer discovery was configured: join the old way
    if ! member_of_cluster "$n"; then
      ctl "$n" stop_app
      ctl "$n" join_cluster "$(node_name 1)"
      ctl "$n" start_app
    fi &
    joins+=($!)
  done
  for pid in "${joins[@]}"; do wait "$pid" || die "a node could not join $(node_name 1)"; done
  status
}

stop() {
  for n in 3 2 1; do
    port_open "$(node_port "$n")" && ctl "$n" stop >/dev/null 2>&1 &
  done
  wait
  for n in 1 2 3; do
    local waited=0
    while port_open "$(node_port "$n")" && ((waited < 240)); do sleep 0.25; waited=$((waited + 1)); done
  done
  echo "stopped $(node_name 1) $(node_name 2) $(node_name 3)"
}

urls() {
  local out=()
  for n in 1 2 3; do out+=("amqp://guest:guest@127.0.0.1:$(node_port "$n")/"); done
  (IFS=,; echo "${out[*]}")
}

status() {
  for n in 1 2 3; do
    if port_open "$(node_port "$n")"; then state=running; else state=down; fi
    echo "$(node_name "$n") amqp 127.0.0.1:$(node_port "$n") dist $(($(node_port "$n") + 20000)) $state"
  done
  for n in 1 2 3; do
    if port_open "$(node_port "$n")"; then
      echo "running members (asked $(node_name "$n")):"
      ctl "$n" eval 'lists:sort(rabbit_nodes:all_running()).'
      break
    fi
  done
  echo "SALESWIRE_RABBIT_URLS=$(urls)"
}

node_pid() {
  local dir
  dir=$(node_dir "$1")
  [[ -s "$dir/beam.pid" ]] || die "node $1 has no pid file"
  echo "$(<"$dir/beam.pid")"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  urls) urls ;;
  node-start) [[ ${2:-} =~ ^[123]$ ]] || die "node-start needs 1, 2 or 3"; start_node "$2" ;;
  node-pid) [[ ${2:-} =~ ^[123]$ ]] || die "node-pid needs 1, 2 or 3"; node_pid "$2" ;;
  remove) stop; rm -rf "$(node_dir 1)" "$(node_dir 2)" "$(node_dir 3)" ;;
  *) die "usage: $0 start|stop|status|urls|node-start N|node-pid N|remove" ;;
esac
