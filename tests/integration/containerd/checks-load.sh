# SPDX-License-Identifier: Apache-2.0
# Checks sourced by run.sh: a running shim under load from clients that talk to its ttrpc socket
# directly, beside containerd (cshim-load-client, built in the cmake tree): thousands of
# pipelined calls that each start a runtime process, a client that never reads its answers
# while another one is served (State calls, then Kill calls that need a runtime slot as well),
# a hundred clients holding almost complete 4 MiB frames, and 20,000 clients that park a Wait
# and go away.
# The shim runs with the default limits (conf/cshim.yaml): 32 calls in flight per connection,
# a 32 MiB buffer budget, 8 runtime processes at once. Counts and bounds are asserted; latencies and RSS are printed.

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
  # The budget holds; what is over it is refused, and memory is given back.
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

# Only when asked (CSHIM_IT_LOAD=1, the integration_containerd_load test): it keeps both cores
# busy with runtime processes for a minute, so ctest runs it alone.
if [ "${CSHIM_IT_LOAD:-0}" = 1 ]; then
  check "ttrpc load: pipelined, never-reading and partial-frame clients stay bounded" \
    check_ttrpc_load
fi
