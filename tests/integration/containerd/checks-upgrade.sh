# SPDX-License-Identifier: Apache-2.0
# Sourced by run.sh after its own checks. Only with CSHIM_IT_UPGRADE_FROM=<older containerd
# binary> (matrix.sh sets containerd 1.7's when it tests 2.x): an upgrade as an operator does it.
# A second private containerd (own root, state and sockets) of the older version starts a grouped
# container under cshim (bare address, task API v2); it is stopped with the shim still running;
# the version under test takes over the same state, finds the task running, and a new container
# of the same group joins the running shim — which serves task API v3, so `start` announces v3
# (containerd issue #10888 is about announcing what the group's running shim really serves).

up_pid=
up_dir="$tmp/upgrade"
up_sock="$up_dir/containerd.sock"

up_stop() {
  [ -n "$up_pid" ] || return 0
  kill "$up_pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$up_pid" 2>/dev/null
  wait "$up_pid" 2>/dev/null
  up_pid=
}

up_start() { # <containerd binary>
  PATH="$prefix/bin:$PATH" CSHIM_CONFIG="${CSHIM_IT_CONFIG:-$prefix/etc/cshim/cshim.yaml}" \
    "$1" --config "$up_dir/containerd.toml" >>"$up_dir/containerd.log" 2>&1 &
  up_pid=$!
  for _ in $(seq 200); do
    [ -S "$up_sock" ] && ctr --address "$up_sock" version >/dev/null 2>&1 && return 0
    kill -0 "$up_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd $1 did not come up:"
  tail -20 "$up_dir/containerd.log"
  return 1
}

up_ctr() { timeout -k 5 60 ctr --address "$up_sock" --namespace "$ns" "$@"; }
up_status() { up_ctr task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
up_remove() {
  up_ctr task kill -s SIGKILL "$1" >/dev/null 2>&1
  for _ in $(seq 50); do [ "$(up_status "$1")" = RUNNING ] || break; sleep 0.1; done
  up_ctr task delete "$1" >/dev/null 2>&1
  up_ctr container delete "$1" >/dev/null 2>&1
}

# run.sh's cleanup, plus this second containerd and what it started
up_wrap_cleanup() {
  eval "up_run_sh_$(declare -f cleanup)"
  cleanup() {
    set +e
    up_stop
    for a in "$up_dir"/state/io.containerd.runtime.v2.task/*/*/address; do
      [ -f "$a" ] || continue
      s=$(cat "$a"); s=${s#unix://}
      [ -S "$s" ] && rm -f "$s"
    done
    up_run_sh_cleanup
  }
  trap cleanup EXIT
}

check_upgrade() {
  local old=$CSHIM_IT_UPGRADE_FROM a=up-a b=up-b group addr_a addr_b shim bad=0 line
  mkdir -p "$up_dir"
  sed -e "s|^root = .*|root = \"$up_dir/root\"|" -e "s|^state = .*|state = \"$up_dir/state\"|" \
    -e "s|address = \"$sock.ttrpc\"|address = \"$up_sock.ttrpc\"|" \
    -e "s|address = \"$sock\"|address = \"$up_sock\"|" "$tmp/containerd.toml" >"$up_dir/containerd.toml"
  local up_bundles="$up_dir/state/io.containerd.runtime.v2.task/$ns"
  group="--annotation=io.containerd.runc.v2.group=up-grp"

  up_start "$old" || return 1
  echo "# from: $("$old" --version)"
  up_ctr run -d --runtime "$runtime" "$group" --rootfs "$rootfs" "$a" /bin/sleep 1000 ||
    { echo "run $a under the old containerd failed"; up_stop; return 1; }
  addr_a=$(cat "$up_bundles/$a/address" 2>/dev/null)
  [[ "$addr_a" == unix:///* ]] || { echo "$a's address: '$addr_a'"; bad=1; }
  up_stop # the shim stays, as after a real containerd stop

  up_start "$(command -v containerd)" || return 1
  for _ in $(seq 50); do [ "$(up_status "$a")" = RUNNING ] && break; sleep 0.1; done
  [ "$(up_status "$a")" = RUNNING ] || { echo "after the upgrade $a is '$(up_status "$a")'"; bad=1; }
  up_ctr run -d --runtime "$runtime" "$group" --rootfs "$rootfs" "$b" /bin/sleep 1000 ||
    { echo "run $b after the upgrade failed"; bad=1; }
  for _ in $(seq 50); do [ "$(up_status "$b")" = RUNNING ] && break; sleep 0.1; done
  addr_b=$(grep -o '"address":"[^"]*"' "$up_bundles/$b/bootstrap.json" 2>/dev/null | cut -d'"' -f4)
  [ -n "$addr_b" ] || addr_b=$(cat "$up_bundles/$b/address" 2>/dev/null)
  [ "$addr_a" = "$addr_b" ] || { echo "$b joined '$addr_b', $a is at '$addr_a'"; bad=1; }
  shim=$(for p in $(shims_under_tmp); do readlink "/proc/$p/cwd" | grep -q "^$up_bundles/" && echo "$p"; done)
  [ "$(echo "$shim" | grep -c .)" = 1 ] || { echo "shims for the group: $(echo $shim)"; bad=1; }
  line=$(grep "connecting to shim $b" "$up_dir/containerd.log" | tail -1)
  echo "$line"
  if [ "${ctrd_major:-1}" -ge 2 ] && [ "$runtime" = io.containerd.cshim.v2 ]; then
    [[ "$line" == *"version=3"* ]] || { echo "$b: the running cshim serves v3, start must say so"; bad=1; }
  fi
  # a task the old containerd started is driven to its end by the new one
  up_ctr task pause "$a" && up_ctr task resume "$a" || { echo "pause/resume of $a failed"; bad=1; }
  up_remove "$b"
  up_remove "$a"
  for _ in $(seq 50); do kill -0 "$shim" 2>/dev/null || break; sleep 0.1; done
  [ -n "$shim" ] && kill -0 "$shim" 2>/dev/null && { echo "shim $shim still running"; bad=1; }
  [ -S "${addr_a#unix://}" ] && { echo "socket ${addr_a#unix://} left"; bad=1; }
  up_stop
  [ "$bad" = 0 ] || { echo "new containerd's log:"; tail -15 "$up_dir/containerd.log"; }
  return $bad
}

# cshim only: with containerd's runc shim the older containerd would find the newer one's
# containerd-shim-runc-v2 first on PATH (run.sh puts it there), which it cannot talk to
if [ -n "${CSHIM_IT_UPGRADE_FROM:-}" ] && [ "$runtime" = io.containerd.cshim.v2 ]; then
  up_wrap_cleanup
  check "upgrade: a grouped task started by an older containerd runs on; a new one joins its shim" check_upgrade
fi
