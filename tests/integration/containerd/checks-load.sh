# SPDX-License-Identifier: Apache-2.0
# Checks sourced by run.sh: a running shim under load from clients that talk to its ttrpc socket
# directly, beside containerd (cshim-load-client, built in the cmake tree): thousands of
# pipelined calls that each start a runtime process, a client that never reads its answers
# while another one is served (State calls, then Kill calls that need a runtime slot as well),
# a hundred clients holding almost complete 4 MiB frames, 20,000 clients that park a Wait
# and go away; and, against a shim of its own, a client that stalls mid-frame.
# The shim runs with the default limits (conf/cshim.yaml): 32 calls in flight per connection,
# a 32 MiB buffer budget, 8 runtime processes at once. Counts and bounds (RSS against the
# budget included) are asserted; latencies are printed.

# CSHIM_IT_LOAD_CLIENT: a load client from another build tree (the release preset builds no
# tests: `run.sh build/release` with the dev tree's client measures the optimised shim).
load_client="${CSHIM_IT_LOAD_CLIENT:-${build:+$build/tests/integration/containerd/cshim-load-client}}"
load_calls="${CSHIM_IT_LOAD_CALLS:-2000}"

# load_ <mode args...>: the load client against it-load's shim
load_() {
  local addr pid p
  addr=$(cat "$bundles/it-load/address") || return 1
  addr=${addr#unix://}
  pid=
  for p in $(shims_under_tmp); do
    [ "$(readlink "/proc/$p/cwd")" = "$bundles/it-load" ] && pid=$p
  done
  [ -n "$pid" ] || { echo "no shim runs it-load"; return 1; }
  # Its figures (latencies, peaks, RSS) are printed as TAP diagnostics even when the check passes.
  timeout -k 5 600 "$load_client" "$addr" "$ns" it-load "$pid" "$@" | sed 's/^/# /'
}

check_ttrpc_load() {
  if [ ! -x "$load_client" ]; then
    echo "no load client (run.sh was given an install prefix, not a build tree)"
    return 1
  fi
  start_sleeper it-load || return 1
  local bad=0
  # Every pipelined call is answered OK, however many are queued behind the in-flight limit.
  load_ pipelined "$load_calls" || bad=1
  # The hog gets at most 32 calls in work (the shim stops reading it past that) and the runtime
  # runs at most 8 commands at once (max_runtime_processes): the shim's children (those and the
  # container's init) and fds stay bounded, and every call of the other client is answered OK.
  load_ never-reading 20000 1000 12 100 || bad=1
  load_ settle
  # The budget holds (the shim charges its own structures for the clients to it as well): the
  # shim's RSS grows by at most the budget; what is over it is refused, and memory is given back.
  # Under a sanitizer RSS is the allocator's quarantine and shadow, not the shim's buffers: the
  # growth is printed, not checked.
  load_ partial-frames 100 "$([ "${CSHIM_IT_SANITIZED:-0}" = 1 ] && echo 0 || echo 32)" || bad=1
  # Clients that park a Wait and go away, 20,000 times: the Waits go with their connections
  # (before, each stayed until the container exited: ~14 MB for these).
  load_ park-and-leave 20000 "$([ "${CSHIM_IT_SANITIZED:-0}" = 1 ] && echo 0 || echo 2048)" || bad=1
  # Still serving: a normal call after all that.
  load_ pipelined 10 || bad=1
  [ "$(task_status it-load)" = RUNNING ] || { echo "it-load is $(task_status it-load)"; bad=1; }
  remove_task it-load
  return $bad
}

# A client that sends half a frame and stalls, against a shim configured (through the runtime
# options' ConfigPath) with a 5 MiB budget and a 1 s stalled_frame_timeout: its connection is
# closed and the budget it held given back, while another client is served and an idle
# connection is left open (load_client.c, run_stalled).
check_ttrpc_stall() {
  local cfg="$tmp/stall.yaml" bad=0 addr pid p
  if [ "$runtime" != io.containerd.cshim.v2 ]; then
    echo "# cshim's own limit: not checked for $runtime"
    return 0
  fi
  [ -x "$load_client" ] || { echo "no load client"; return 1; }
  printf 'ttrpc:\n  buffer_budget_mib: 5\n  stalled_frame_timeout: 1s\n' >"$cfg"
  run_ -d --runtime-config-path "$cfg" it-stall /bin/sleep 1000 || { echo "ctr run -d failed"; return 1; }
  wait_status it-stall RUNNING || { echo "not RUNNING"; remove_task it-stall; return 1; }
  addr=$(cat "$bundles/it-stall/address") || { remove_task it-stall; return 1; }
  pid=
  for p in $(shims_under_tmp); do
    [ "$(readlink "/proc/$p/cwd")" = "$bundles/it-stall" ] && pid=$p
  done
  [ -n "$pid" ] || { echo "no shim runs it-stall"; remove_task it-stall; return 1; }
  timeout -k 5 120 "$load_client" "${addr#unix://}" "$ns" it-stall "$pid" stalled 1000 |
    sed 's/^/# /' || bad=1
  # The shim says why it closed the connection.
  if ! grep -q "closing a connection that sent part of a frame" "$tmp/containerd.log"; then
    echo "no log line for the stalled connection"
    bad=1
  fi
  [ "$(task_status it-stall)" = RUNNING ] || { echo "it-stall is $(task_status it-stall)"; bad=1; }
  remove_task it-stall
  return $bad
}

# Only when asked (CSHIM_IT_LOAD=1, the integration_containerd_load test): it keeps both cores
# busy with runtime processes for a minute, so ctest runs it alone.
if [ "${CSHIM_IT_LOAD:-0}" = 1 ]; then
  check "ttrpc load: pipelined, never-reading and partial-frame clients stay bounded" \
    check_ttrpc_load
  check "ttrpc: a connection stalled mid-frame is closed, its budget given back" \
    check_ttrpc_stall
fi
