# SPDX-License-Identifier: Apache-2.0
# Throwaway Redis servers for tests, on 127.0.0.1 only, sourced by test scripts:
#   source "$SNAPKIT_ROOT/tests/lib/redis.bash"
#   redis_available || { echo "skipped: redis-server is not installed"; exit 77; }
#   redis_start_plain PORT [ARGS...]    one server; $PORT = its port; ARGS go to redis-server
#   redis_start_cluster PORTS [N=3]     N masters, no replicas, cluster_state:ok; $PORTS = "p1 p2 p3"
#   redis_cli PORT ARGS...              redis-cli against one of them
#   redis_kill_node PORT                SIGKILL one server (fault tests)
#   redis_pause_node / redis_resume_node PORT   SIGSTOP / SIGCONT one (a node that never answers)
#   redis_slot_owner, redis_slot_migrate_{begin,keys,end}: move a slot by hand (MOVED/ASK tests)
#   redis_stop_all                      SIGTERM every server started here, SIGKILL after 5 s, remove dirs
# Cleanup rule: the first start installs `trap redis_cleanup EXIT`, prepended to the EXIT trap
# the script already has (so set yours BEFORE starting servers; one set later replaces ours,
# and must then call redis_cleanup itself). SIGINT/SIGTERM/SIGHUP end the script through that
# trap unless the script traps them itself. A script killed with SIGKILL (ctest's timeout)
# runs no trap: a watchdog process SIGKILLs the servers within a second of the script's end.
# Servers run in the foreground of a background job (--daemonize no), stdio to a log file, so
# they are children of the script and never hold ctest's output pipe open.

REDIS_PIDS=()             # redis-server pids, in start order
declare -A REDIS_PID_OF   # port -> pid
_redis_root=
_redis_watchdog=
_redis_trapped=

redis_available() { command -v redis-server > /dev/null && command -v redis-cli > /dev/null; }

redis_cli() {
  local port=$1; shift
  timeout 30 redis-cli -h 127.0.0.1 -p "$port" "$@"
}

redis_cleanup() { redis_stop_all; }

_redis_setup() {
  if [ -z "$_redis_root" ]; then
    local base=${SNAPKIT_WORK:-${TMPDIR:-/tmp}}
    mkdir -p "$base" && _redis_root=$(mktemp -d "$base/redis.XXXXXX") || return 1
    : > "$_redis_root/pids"
  fi
  if [ -z "$_redis_trapped" ]; then
    _redis_trapped=1
    local cur; cur=$(trap -p EXIT)
    if [ -n "$cur" ]; then
      eval "local -a t=($cur)"  # trap -- 'CMD' EXIT
      trap "redis_cleanup; ${t[2]}" EXIT
    else
      trap redis_cleanup EXIT
    fi
    local sig code
    for sig in HUP:129 INT:130 TERM:143; do
      code=${sig#*:} sig=${sig%:*}
      [ -n "$(trap -p $sig)" ] || trap "exit $code" $sig
    done
  fi
  if [ -z "$_redis_watchdog" ] || ! kill -0 "$_redis_watchdog" 2> /dev/null; then
    local parent=$$ list=$_redis_root/pids
    (
      trap '' INT TERM HUP
      while kill -0 "$parent" 2> /dev/null; do sleep 0.5; done
      for pid in $(cat "$list" 2> /dev/null); do
        [ "$(cat /proc/$pid/comm 2> /dev/null)" = redis-server ] && kill -KILL "$pid" 2> /dev/null
      done
      sleep 0.2
      rm -rf "${list%/pids}"
    ) < /dev/null > /dev/null 2>&1 &
    _redis_watchdog=$!
  fi
}

# A port in 17000-17999 nobody listens on, nor on PORT+10000 (the cluster bus).
_redis_free_port() {
  local p
  for p in $(shuf -i 17000-17999 -n 300); do
    [ -n "${REDIS_PID_OF[$p]:-}" ] && continue
    if ! ss -Hltn "( sport = :$p or sport = :$((p + 10000)) )" 2> /dev/null | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# _redis_spawn ARGS...: start one server on a free port (retrying when another process took
# it first); prints nothing, sets _redis_port.
_redis_spawn() {
  _redis_setup || return 1
  local try port dir pid i
  for try in 1 2 3 4 5; do
    port=$(_redis_free_port) || { echo "redis: no free port in 17000-17999" >&2; return 1; }
    dir=$_redis_root/$port
    mkdir -p "$dir"
    (cd "$dir" && exec redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --save '' \
       --appendonly no --maxmemory-policy noeviction --dir "$dir" --daemonize no \
       --logfile "$dir/redis.log" "$@") < /dev/null > "$dir/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >> "$_redis_root/pids"
    REDIS_PIDS+=("$pid")
    for i in $(seq 100); do
      kill -0 "$pid" 2> /dev/null || break
      [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2> /dev/null)" = PONG ] && {
        REDIS_PID_OF[$port]=$pid
        _redis_port=$port
        return 0
      }
      sleep 0.1
    done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    echo "redis: server on port $port did not start: $(tail -3 "$dir/redis.log" "$dir/stdout.log" 2> /dev/null)" >&2
  done
  return 1
}

redis_start_plain() {
  local var=$1; shift
  _redis_spawn "$@" || return 1
  printf -v "$var" '%s' "$_redis_port"
}

redis_start_cluster() {
  local var=$1 n=${2:-3} ports=() addrs=() p i
  for ((i = 0; i < n; i++)); do
    _redis_spawn --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 || return 1
    ports+=("$_redis_port")
    addrs+=("127.0.0.1:$_redis_port")
  done
  timeout 60 redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    > "$_redis_root/cluster-create.log" 2>&1 || {
    echo "redis: cluster create failed: $(tail -5 "$_redis_root/cluster-create.log")" >&2
    return 1
  }
  redis_wait_cluster_ok "${ports[@]}" || return 1
  printf -v "$var" '%s' "${ports[*]}"
}

# Every node says cluster_state:ok, knows every other and sees all 16384 slots.
redis_wait_cluster_ok() {
  local n=$# p i ok
  for i in $(seq 200); do
    ok=1
    for p in "$@"; do
      local info; info=$(redis-cli -h 127.0.0.1 -p "$p" cluster info 2> /dev/null | tr -d '\r')
      grep -q '^cluster_state:ok$' <<< "$info" && grep -q '^cluster_slots_assigned:16384$' <<< "$info" &&
        grep -q "^cluster_known_nodes:$n$" <<< "$info" || { ok=; break; }
    done
    [ -n "$ok" ] && return 0
    sleep 0.1
  done
  echo "redis: the cluster on $* is not ok after 20 s" >&2
  return 1
}

redis_kill_node() {
  local pid=${REDIS_PID_OF[$1]:-}
  [ -n "$pid" ] || { echo "redis: no server of ours on port $1" >&2; return 1; }
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  return 0
}

# SIGSTOP / SIGCONT one server: it accepts connections (the kernel does) but never answers.
redis_pause_node() { kill -STOP "${REDIS_PID_OF[$1]:?no server of ours on port $1}"; }
redis_resume_node() { kill -CONT "${REDIS_PID_OF[$1]:?no server of ours on port $1}"; }

redis_stop_all() {
  local pid i
  # `|| true`: safe under `set -e` (a server that already exited makes kill and wait fail)
  for pid in "${REDIS_PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; kill -CONT "$pid" 2> /dev/null || true; done
  for pid in "${REDIS_PIDS[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
  REDIS_PIDS=()
  REDIS_PID_OF=()
  if [ -n "$_redis_watchdog" ]; then
    kill -KILL "$_redis_watchdog" 2> /dev/null || true
    wait "$_redis_watchdog" 2> /dev/null || true
    _redis_watchdog=
  fi
  [ -n "$_redis_root" ] && rm -rf "$_redis_root"
  _redis_root=
  return 0
}

# The node id of the server on PORT.
redis_node_id() { redis_cli "$1" cluster myid | tr -d '\r'; }

# The port of the master serving SLOT, among PORTS.
redis_slot_owner() {
  local slot=$1 p; shift
  local nodes; nodes=$(redis_cli "$1" cluster nodes | tr -d '\r')
  while read -r id addr flags master ping pong epoch state ranges; do
    [[ $flags == *master* ]] || continue
    for r in $ranges; do
      [[ $r == \[* ]] && continue
      local lo=${r%-*} hi=${r#*-}
      if ((slot >= lo && slot <= hi)); then addr=${addr%@*}; echo "${addr##*:}"; return 0; fi
    done
  done <<< "$nodes"
  return 1
}

# Slot migration by hand (Redis Cluster spec, "live resharding"): begin marks SLOT importing
# on TO and migrating on FROM; then MIGRATE moves keys (redis_slot_migrate_keys moves COUNT of
# them); end assigns the slot to TO on every node given. Between begin and end, FROM answers
# ASK for keys it no longer has.
redis_slot_migrate_begin() {  # FROM TO SLOT
  local from_id to_id
  from_id=$(redis_node_id "$1") && to_id=$(redis_node_id "$2") || return 1
  [ "$(redis_cli "$2" cluster setslot "$3" importing "$from_id")" = OK ] &&
    [ "$(redis_cli "$1" cluster setslot "$3" migrating "$to_id")" = OK ]
}
redis_slot_migrate_keys() {  # FROM TO SLOT COUNT: ASCII keys only (they go through the shell)
  local keys
  mapfile -t keys < <(redis_cli "$1" cluster getkeysinslot "$3" "$4" | tr -d '\r')
  ((${#keys[@]})) || return 0
  [ "$(redis_cli "$1" migrate 127.0.0.1 "$2" "" 0 5000 keys "${keys[@]}")" = OK ]
}
redis_slot_migrate_end() {  # FROM TO SLOT PORTS...
  local to_id p slot=$3; to_id=$(redis_node_id "$2") || return 1
  shift 3
  for p in "$@"; do [ "$(redis_cli "$p" cluster setslot "$slot" node "$to_id")" = OK ] || return 1; done
}
