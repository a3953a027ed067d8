# shellcheck shell=bash
# Starting, waiting for and stopping the bed's daemons (sourced, never run).
# Each daemon runs in its own session (setsid) with its pid in
# $TESTBED_DIR/run/NAME.pid and its output in $TESTBED_DIR/logs/NAME.log, so
# tear-down stops exactly what the bed started and nothing else on the machine.

# start NAME CMD...: run CMD in the background as daemon NAME.
start() {
  local name=$1; shift
  mkdir -p "$TESTBED_DIR/run" "$TESTBED_DIR/logs"
  setsid "$@" >"$TESTBED_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$TESTBED_DIR/run/$name.pid"
}

# running PID: true while PID runs. A daemon outlives up.sh, so its parent
# becomes PID 1, which may reap it late: a zombie counts as stopped.
running() {
  local stat
  stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "${stat%% *}" != Z ]
}

# alive NAME: true while daemon NAME runs.
alive() {
  local pidfile=$TESTBED_DIR/run/$1.pid
  [ -f "$pidfile" ] && running "$(cat "$pidfile")"
}

# wait_until SECONDS WHAT CMD...: poll CMD every 0.2 s, at most SECONDS.
# (A `kubectl wait --timeout=5s` as CMD returns as soon as its condition
# holds; the loop around it retries while the object does not exist yet.)
# Fails with the last lines of the daemons' logs when it never succeeds, or
# at once when the daemon named in $WAIT_DAEMON has died.
wait_until() {
  local limit=$1 what=$2; shift 2
  local tries=$((limit * 5)) i
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    if [ -n "${WAIT_DAEMON:-}" ] && ! alive "$WAIT_DAEMON"; then
      tail -n 30 "$TESTBED_DIR/logs/$WAIT_DAEMON.log" >&2 || true
      die "$WAIT_DAEMON exited while waiting for $what"
    fi
    sleep 0.2
  done
  [ -n "${WAIT_DAEMON:-}" ] && tail -n 30 "$TESTBED_DIR/logs/$WAIT_DAEMON.log" >&2
  die "timed out after ${limit}s waiting for $what"
}

# stop SECONDS NAME...: SIGTERM to every named daemon at once, then SIGKILL
# to those still running after SECONDS. The bed's state is thrown away at
# tear-down, so nothing needs a long graceful shutdown.
stop() {
  local limit=$1 name pid i busy; shift
  local pids=()
  for name in "$@"; do
    [ -f "$TESTBED_DIR/run/$name.pid" ] || continue
    pid=$(cat "$TESTBED_DIR/run/$name.pid")
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$TESTBED_DIR/run/$name.pid"
  done
  for ((i = 0; i < limit * 10; i++)); do
    busy=0
    for pid in "${pids[@]}"; do running "$pid" && busy=1; done
    [ $busy = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if running "$pid"; then
      log "pid $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-60)) did not stop in ${limit}s: killing it"
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  sleep 0.2
}
