#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Live upgrade of cshim shims under a private containerd (temporary root, state and sockets) with
# real runc and a busybox rootfs (docs/live-upgrade.md); prints TAP-style lines and
# "N passed, N failed".
#
# usage: run.sh <cmake build dir> <next shim binary>
#   The build is installed into a temporary prefix; <next shim binary> (the same sources built
#   with another version string) is installed beside the shim as containerd-shim-cshim-v2-next.
# env:   CSHIM_IT_ONLY="1 4"  run only these checks;  CSHIM_IT_KEEP=1  keep the temp dir
#
# Everything this script starts is stopped on exit, whatever happens: containerd, ctr clients,
# shims whose working directory is under the temporary state dir, containers left in our runc
# root, mounts under the temporary dir; then the directory is removed.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP needs root (real containers)"
  exit 0
fi
for tool in containerd ctr runc busybox; do
  if ! command -v "$tool" >/dev/null; then
    echo "1..0 # SKIP $tool not installed"
    exit 0
  fi
done
[ $# -ge 2 ] || { echo "usage: $0 <cmake build dir> <next shim binary> [--bench]" >&2; exit 2; }
bench=${3:-}
build=$(realpath "$1")
next_src=$(realpath "$2")

tmp=$(mktemp -d /tmp/cshim-up.XXXXXX)
ns="cshim-up-${tmp##*.}"
sock="$tmp/containerd.sock"
state="$tmp/state"
bundles="$state/io.containerd.runtime.v2.task/$ns"
rootfs="$tmp/rootfs"
runc_root="/run/containerd/runc/$ns"
runtime=io.containerd.cshim.v2
shim_binary=containerd-shim-cshim-v2
prefix="$tmp/prefix"
ctrd_pid=
bg_pids=()
passed=0
failed=0
n=0

shims_under_tmp() {
  local p cwd
  for p in $(pgrep -f "$shim_binary" 2>/dev/null); do
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null) || continue
    case "$cwd" in "$tmp"/*) echo "$p" ;; esac
  done
}

stop_containerd() {
  if [ -n "$ctrd_pid" ]; then
    kill "$ctrd_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$ctrd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$ctrd_pid" 2>/dev/null
    wait "$ctrd_pid" 2>/dev/null
    ctrd_pid=
  fi
}

cleanup() {
  set +e
  trap - EXIT INT TERM
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  stop_containerd
  for p in $(shims_under_tmp); do kill -9 "$p" 2>/dev/null; done
  for a in "$state"/io.containerd.runtime.v2.task/*/*/address; do
    [ -f "$a" ] || continue
    s=$(cat "$a"); s=${s#unix://}
    [ -S "$s" ] && rm -f "$s"
  done
  if [ -d "$runc_root" ]; then
    for c in $(runc --root "$runc_root" list -q 2>/dev/null); do
      runc --root "$runc_root" delete --force "$c" >/dev/null 2>&1
    done
    rm -rf "$runc_root"
  fi
  grep -o " $tmp[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  if [ "${CSHIM_IT_KEEP:-0}" = 1 ]; then
    echo "# kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ctr keeps a container's stdio FIFOs under /run/containerd/fifo unless told otherwise, and
# leaves them there when it ends abnormally (a refused duplicate id, a killed shim): every run
# left a few. Those of ctr run, task start and task exec go under $tmp instead (not with
# --log-uri, which ctr refuses beside --fifo-dir and which makes no FIFOs).
ctr_() {
  local args=("$@") a fifo=1
  for a in "$@"; do case "$a" in --log-uri | --log-uri=* | -log-uri | -log-uri=*) fifo=0 ;; esac; done
  if [ "$fifo" = 1 ]; then
    case "${1:-}" in
      run) args=(run --fifo-dir "$tmp/fifo" "${@:2}") ;;
      task | tasks | t)
        case "${2:-}" in start | exec) args=("$1" "$2" --fifo-dir "$tmp/fifo" "${@:3}") ;; esac ;;
    esac
  fi
  timeout -k 5 60 ctr --address "$sock" --namespace "$ns" "${args[@]}"
}
ctl() { "$prefix/bin/cshimctl" "$@"; }

start_containerd() {
  PATH="$prefix/bin:$PATH" CSHIM_CONFIG="$prefix/etc/cshim/cshim.yaml" \
    containerd --config "$tmp/containerd.toml" >>"$tmp/containerd.log" 2>&1 &
  ctrd_pid=$!
  for _ in $(seq 200); do
    if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then return 0; fi
    kill -0 "$ctrd_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "# containerd did not come up; its log:"
  sed 's/^/#   /' "$tmp/containerd.log" | tail -30
  return 1
}

task_status() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
task_pid() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }

wait_status() { # <id> <status> [tries of 0.1 s]
  local i
  for i in $(seq "${3:-100}"); do
    [ "$(task_status "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

remove_task() {
  ctr_ task kill -s SIGKILL "$1" >/dev/null 2>&1
  wait_status "$1" STOPPED 50
  ctr_ task delete "$1" >/dev/null 2>&1
  ctr_ container delete "$1" >/dev/null 2>&1
}

shim_of() { # <id>: the pid of the shim serving the task
  local p
  for p in $(shims_under_tmp); do
    [ "$(readlink "/proc/$p/cwd")" = "$bundles/$1" ] && { echo "$p"; return 0; }
  done
  return 1
}

shim_address() { cat "$bundles/$1/address"; }

wanted() { [ -z "${CSHIM_IT_ONLY:-}" ] || [[ " $CSHIM_IT_ONLY " == *" $1 "* ]]; }

check() { # <name> <function>
  n=$((n + 1))
  if ! wanted "$n"; then
    echo "ok $n - $1 # SKIP not selected"
    return
  fi
  local out="$tmp/check-$n.log"
  if "$2" >"$out" 2>&1; then
    passed=$((passed + 1))
    echo "ok $n - $1"
  else
    failed=$((failed + 1))
    echo "not ok $n - $1"
    sed 's/^/#   /' "$out" | tail -25
  fi
}

# A counter on stdout, attached through `ctr run` (containerd holds the shim's Wait for it).
counter_cmd='i=0; while true; do echo $i; i=$((i+1)); sleep 0.01; done'

# start_counter <id>: runs it attached in the background; the output goes to $tmp/<id>.out and
# ctr's exit status to $tmp/<id>.rc
start_counter() {
  (
    ctr --address "$sock" --namespace "$ns" run --fifo-dir "$tmp/fifo" --runtime "$runtime" --rm \
      --rootfs "$rootfs" "$1" /bin/sh -c "$counter_cmd" >"$tmp/$1.out" 2>"$tmp/$1.err"
    echo $? >"$tmp/$1.rc"
  ) &
  bg_pids+=($!)
  wait_status "$1" RUNNING || { echo "$1 not RUNNING: $(cat "$tmp/$1.err")"; return 1; }
  # the counter is flowing
  for _ in $(seq 100); do [ -s "$tmp/$1.out" ] && return 0; sleep 0.05; done
  echo "$1 prints nothing"
  return 1
}

# watch_status <id>: records `ctr task ls`'s status of id every 50 ms into $tmp/<id>.status
watch_status() {
  (
    while true; do
      task_status "$1" >>"$tmp/$1.status"
      sleep 0.05
    done
  ) &
  watch_pid=$!
  bg_pids+=($watch_pid)
}

# finish_counter <id>: SIGKILL, then ctr run must exit 137 and the output be 0, 1, 2, ... with no
# gap and no repeat
finish_counter() {
  local i rc lines last
  local out
  if ! out=$(ctr_ task kill -s SIGKILL "$1" 2>&1); then
    # A shim whose last task is deleted (ctr run --rm, once its Wait returns) exits even while
    # the Kill that caused it still waits for `runc kill`: containerd then reports the Kill
    # as closed. That race is not the upgrade's; anything else fails the check.
    [[ "$out" == *"ttrpc: closed"* ]] || { echo "task kill failed: $out"; return 1; }
    echo "# kill answered '$out' (the shim exited with the Kill in flight)"
  fi
  for i in $(seq 100); do [ -s "$tmp/$1.rc" ] && break; sleep 0.1; done
  rc=$(cat "$tmp/$1.rc" 2>/dev/null)
  [ "$rc" = 137 ] || { echo "ctr run exit status '$rc', want 137: $(cat "$tmp/$1.err")"; return 1; }
  lines=$(wc -l <"$tmp/$1.out")
  last=$(tail -n 1 "$tmp/$1.out")
  # the last line may have been cut by the kill
  if ! awk 'NR - 1 != $1 { bad = 1; print "line " NR ": " $0; exit } END { exit bad }' \
    <(head -n $((lines - 1)) "$tmp/$1.out"); then
    echo "the counter has a gap or a repeat"
    return 1
  fi
  echo "counter reached $last over $lines lines"
}

no_disconnect() { # <id>: containerd never logged that the shim went away
  if grep "shim disconnected" "$tmp/containerd.log" | grep -q "id=$1"; then
    echo "containerd saw the shim of $1 disconnect:"
    grep "id=$1" "$tmp/containerd.log" | tail -5
    return 1
  fi
}

only_running() { # <id>: every status recorded while watching was RUNNING
  local other
  other=$(grep -v '^RUNNING$' "$tmp/$1.status" | sort | uniq -c)
  [ -z "$other" ] || { echo "$1 was not always RUNNING: $other"; return 1; }
}

stop_watch() {
  kill "$watch_pid" 2>/dev/null
  wait "$watch_pid" 2>/dev/null
}

# ---- checks ----

check_upgrade_to_next() {
  local id=up-next shim before after out exe
  start_counter $id || return 1
  shim=$(shim_of $id) || { echo "no shim"; return 1; }
  watch_status $id
  before=$(wc -l <"$tmp/$id.out")
  out=$(ctl -a "$(shim_address $id)" upgrade --binary "$prefix/bin/$shim_binary-next") \
    || { echo "upgrade failed: $out"; stop_watch; return 1; }
  echo "# $out"
  [[ "$out" == *"-> 0"*"+upgrade-test"* ]] || { echo "the answer does not come from the new image: $out"; stop_watch; return 1; }
  [[ "$out" == "pid $shim:"* ]] || { echo "another pid answered: $out (shim $shim)"; stop_watch; return 1; }
  kill -0 "$shim" || { echo "shim $shim is gone"; stop_watch; return 1; }
  exe=$(readlink "/proc/$shim/exe")
  [ "$exe" = "$prefix/bin/$shim_binary-next" ] || { echo "/proc/$shim/exe is $exe"; stop_watch; return 1; }
  sleep 1
  after=$(wc -l <"$tmp/$id.out")
  [ "$after" -gt $((before + 20)) ] || { echo "the counter stalled: $before -> $after lines"; stop_watch; return 1; }
  stop_watch
  only_running $id || return 1
  no_disconnect $id || return 1
  finish_counter $id
}

check_sighup() {
  local id=up-hup shim before after exe
  start_counter $id || return 1
  shim=$(shim_of $id) || { echo "no shim"; return 1; }
  exe=$(readlink "/proc/$shim/exe")
  watch_status $id
  before=$(wc -l <"$tmp/$id.out")
  kill -HUP "$shim"
  # SIGHUP answers nobody: the log says when it is done
  for _ in $(seq 100); do
    grep -q "upgrade: .* done" "$tmp/containerd.log" && break
    sleep 0.1
  done
  sleep 1
  kill -0 "$shim" || { echo "shim $shim is gone"; stop_watch; return 1; }
  [ "$(readlink "/proc/$shim/exe")" = "$exe" ] || { echo "exe changed"; stop_watch; return 1; }
  after=$(wc -l <"$tmp/$id.out")
  [ "$after" -gt $((before + 20)) ] || { echo "the counter stalled: $before -> $after lines"; stop_watch; return 1; }
  stop_watch
  only_running $id || return 1
  no_disconnect $id || return 1
  grep -q "upgrade: .* done" "$tmp/containerd.log" || { echo "no upgrade in the log"; return 1; }
  finish_counter $id
}

check_rollback() {
  local id=up-back shim before after out bad="$tmp/bad" rc
  start_counter $id || return 1
  shim=$(shim_of $id) || { echo "no shim"; return 1; }
  watch_status $id
  mkdir -p "$bad/bin"
  printf 'not a program\n' >"$bad/notexec"
  printf '\x7fELF garbage\n' >"$bad/garbage"
  chmod +x "$bad/garbage"
  # a real cshim binary without its plugins: it fails while restoring and hands back
  cp "$prefix/bin/$shim_binary-next" "$bad/bin/$shim_binary"
  before=$(wc -l <"$tmp/$id.out")
  for target in "$bad/missing" "$bad/notexec" "$bad/garbage" "$bad/bin/$shim_binary" relative/path; do
    out=$(ctl -a "$(shim_address $id)" upgrade --binary "$target" 2>&1)
    rc=$?
    echo "# $target: rc=$rc $out"
    [ "$rc" != 0 ] || { echo "upgrade to $target succeeded"; stop_watch; return 1; }
    [[ "$out" == *"$target"* ]] || { echo "the reason does not name $target: $out"; stop_watch; return 1; }
    kill -0 "$shim" || { echo "shim died on $target"; stop_watch; return 1; }
    [ "$(readlink "/proc/$shim/exe")" = "$prefix/bin/$shim_binary" ] || { echo "exe changed"; stop_watch; return 1; }
  done
  [[ "$out" == *"rolled back"* ]] || true
  grep -q "rolled back" "$tmp/check-$n.log" || { echo "no upgrade was rolled back by the new image"; stop_watch; return 1; }
  sleep 0.5
  after=$(wc -l <"$tmp/$id.out")
  [ "$after" -gt $((before + 20)) ] || { echo "the counter stalled: $before -> $after lines"; stop_watch; return 1; }
  stop_watch
  only_running $id || return 1
  no_disconnect $id || return 1
  finish_counter $id
}

# in_pty <rows> <cols> <command...>: run the command on a pty of that size (util-linux script)
in_pty() {
  local rows=$1 cols=$2 cmd
  shift 2
  cmd="stty rows $rows cols $cols; timeout --foreground 60 $(printf '%q ' "$@")"
  script -qec "$cmd" /dev/null
}

counter_ok() { # <file> <what>: 0, 1, 2, ... with no gap or repeat (the last line may be cut)
  local lines
  lines=$(wc -l <"$1")
  [ "$lines" -gt 20 ] || { echo "$2: only $lines lines"; return 1; }
  awk 'NR - 1 != $1 { bad = 1; print "line " NR ": " $0; exit } END { exit bad }' \
    <(head -n $((lines - 1)) "$1") || { echo "$2: a gap or a repeat"; return 1; }
}

# One shim holding three containers (one paused, one with an attached exec streaming a
# counter), a file:// logger, and a `ctr run -t` terminal session: every shim is upgraded while
# they run, then each is checked.
check_everything() {
  local rc c
  everything_body
  rc=$?
  # whatever failed, nothing is left for the next checks
  for c in up-g1 up-g2 up-g3 up-flog up-tty; do
    [ -n "$(task_status $c)" ] && remove_task $c
    ctr_ container delete $c >/dev/null 2>&1
  done
  return $rc
}

everything_body() {
  local g=up-g1 bad=0 out rc before after shims=() s
  command -v script >/dev/null || { echo "util-linux script is not installed"; return 1; }
  for c in up-g1 up-g2 up-g3; do
    ctr_ run --runtime "$runtime" -d --annotation=io.containerd.runc.v2.group=up-grp \
      --rootfs "$rootfs" "$c" /bin/sleep 1000 >/dev/null || { echo "run $c failed"; return 1; }
  done
  for c in up-g1 up-g2 up-g3; do wait_status $c RUNNING || { echo "$c not RUNNING"; return 1; }; done
  [ "$(shim_address up-g1)" = "$(shim_address up-g3)" ] || { echo "not grouped"; return 1; }
  ctr_ task pause up-g1 || { echo "pause failed"; return 1; }
  wait_status up-g1 PAUSED || { echo "up-g1 not PAUSED"; return 1; }
  (
    ctr --address "$sock" --namespace "$ns" task exec --fifo-dir "$tmp/fifo" --exec-id ex1 up-g2 /bin/sh -c "$counter_cmd" \
      >"$tmp/ex1.out" 2>"$tmp/ex1.err"
    echo $? >"$tmp/ex1.rc"
  ) &
  bg_pids+=($!)
  ctr_ run --runtime "$runtime" -d --log-uri "file://$tmp/flog.txt" --rootfs "$rootfs" up-flog \
    /bin/sh -c "$counter_cmd" >/dev/null || { echo "run up-flog failed"; return 1; }
  (
    # typed once the upgrades are done ($tmp/tty.go), whatever the machine's load
    (for _ in $(seq 300); do [ -e "$tmp/tty.go" ] && break; sleep 0.1; done
      sleep 0.5; printf 'typed\n'; sleep 3) | in_pty 30 100 ctr --address "$sock" --namespace "$ns" \
      run --fifo-dir "$tmp/fifo" --runtime "$runtime" -t --rm --rootfs "$rootfs" up-tty \
      /bin/sh -c 'read x; echo "got:$x"; stty size; exit 3' | tr -d '\r' >"$tmp/tty.out"
    echo "${PIPESTATUS[1]}" >"$tmp/tty.rc"
  ) &
  bg_pids+=($!)
  wait_status up-flog RUNNING && wait_status up-tty RUNNING || { echo "flog/tty not RUNNING"; return 1; }
  for _ in $(seq 100); do [ -s "$tmp/ex1.out" ] && [ -s "$tmp/flog.txt" ] && break; sleep 0.05; done
  sleep 0.5
  before=$(wc -l <"$tmp/ex1.out")
  for c in up-g1 up-flog up-tty; do
    s=$(shim_of $c) || { echo "no shim for $c"; bad=1; continue; }
    shims+=("$s")
    out=$(ctl -a "$(shim_address $c)" upgrade --binary "$prefix/bin/$shim_binary-next") \
      || { echo "upgrade of the shim of $c failed: $out"; bad=1; }
    echo "# $c: $out"
    [ "$(readlink "/proc/$s/exe")" = "$prefix/bin/$shim_binary-next" ] || { echo "$c: exe is $(readlink "/proc/$s/exe")"; bad=1; }
  done
  sleep 1
  # (a shim that exits after its last task is deleted is a disconnect too: look before that)
  for c in up-g1 up-g2 up-g3 up-flog up-tty; do no_disconnect $c || bad=1; done
  touch "$tmp/tty.go"
  after=$(wc -l <"$tmp/ex1.out")
  [ "$after" -gt $((before + 20)) ] || { echo "exec counter stalled: $before -> $after"; bad=1; }
  for c in up-g2 up-g3 up-flog; do [ "$(task_status $c)" = RUNNING ] || { echo "$c: $(task_status $c)"; bad=1; }; done
  [ "$(task_status up-g1)" = PAUSED ] || { echo "up-g1: $(task_status up-g1)"; bad=1; }
  ctr_ task resume up-g1 || { echo "resume after the upgrade failed"; bad=1; }
  wait_status up-g1 RUNNING || { echo "up-g1 not RUNNING after resume"; bad=1; }
  # the terminal session: input typed after the upgrade, exit status through the new image
  for _ in $(seq 150); do [ -s "$tmp/tty.rc" ] && break; sleep 0.1; done
  [ "$(cat "$tmp/tty.rc" 2>/dev/null)" = 3 ] || { echo "ctr run -t exit status '$(cat "$tmp/tty.rc" 2>/dev/null)'"; bad=1; }
  grep -q "got:typed" "$tmp/tty.out" && grep -q "30 100" "$tmp/tty.out" || { echo "tty said: $(cat "$tmp/tty.out")"; bad=1; }
  # the exec: killed through the new image, its status reaches ctr
  ctr_ task kill --exec-id ex1 -s SIGKILL up-g2 || { echo "kill of the exec failed"; bad=1; }
  for _ in $(seq 100); do [ -s "$tmp/ex1.rc" ] && break; sleep 0.1; done
  [ "$(cat "$tmp/ex1.rc" 2>/dev/null)" = 137 ] || { echo "exec exit status '$(cat "$tmp/ex1.rc" 2>/dev/null)'"; bad=1; }
  counter_ok "$tmp/ex1.out" "exec output" || bad=1
  remove_task up-flog
  counter_ok "$tmp/flog.txt" "file:// log" || bad=1
  for c in up-g1 up-g2 up-g3; do remove_task $c; done
  return $bad
}

# kill -SEGV (then -ABRT, -BUS) the shim: it re-executes from its last consistent state; a
# fourth fatal signal within 60 s ends it as before (containerd then cleans up).
check_crash() {
  local id=up-crash shim before after i
  start_counter $id || return 1
  shim=$(shim_of $id) || { echo "no shim"; return 1; }
  watch_status $id
  for sig in SEGV ABRT BUS; do
    before=$(wc -l <"$tmp/$id.out")
    sleep 0.3
    kill -$sig "$shim"
    sleep 1
    kill -0 "$shim" || { echo "shim $shim died of SIG$sig"; stop_watch; return 1; }
    after=$(wc -l <"$tmp/$id.out")
    [ "$after" -gt $((before + 20)) ] || { echo "SIG$sig: the counter stalled: $before -> $after"; stop_watch; return 1; }
    [ "$(ctr_ task ls | awk -v id=$id '$1 == id { print $2 }')" -gt 0 ] || { echo "task gone"; stop_watch; return 1; }
  done
  stop_watch
  only_running $id || return 1
  no_disconnect $id || return 1
  [ "$(grep -c "restarted after fatal signal" "$tmp/containerd.log")" -ge 3 ] || { echo "no restart logged"; return 1; }
  finish_counter $id || return 1
  # the bound: a shim that keeps crashing goes the way it always went
  local id2=up-crash2 shim2
  ctr_ run --runtime "$runtime" -d --rootfs "$rootfs" $id2 /bin/sleep 1000 >/dev/null || { echo "run $id2"; return 1; }
  wait_status $id2 RUNNING || { echo "$id2 not RUNNING"; return 1; }
  shim2=$(shim_of $id2) || { echo "no shim for $id2"; return 1; }
  for i in 1 2 3 4; do
    kill -SEGV "$shim2" 2>/dev/null
    sleep 0.5
  done
  for i in $(seq 50); do kill -0 "$shim2" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$shim2" 2>/dev/null; then echo "shim survived 4 crashes in a row"; remove_task $id2; return 1; fi
  grep -q "too many restarts" "$tmp/containerd.log" || { echo "no 'too many restarts' line"; remove_task $id2; return 1; }
  remove_task $id2
  return 0
}

# A crash while a runtime command runs (a wrapper makes `runc start`, `runc exec` and `runc kill`
# wait until the test has sent SIGSEGV): the new image waits for the command, takes its exit
# status as the outcome and finishes what it started. Start (of the task, of an exec) is run
# again and answered with the real pid; Kill is answered with an error saying to retry; the
# container keeps running throughout and its exit is 137.
check_crash_busy() {
  local id=up-busy shim cfg="$tmp/slow.yaml" wrap="$tmp/slow-runc" out rc pid epid bad=0
  cat >"$wrap" <<SH
#!/bin/sh
for a in "\$@"; do
  case "\$a" in
    start|exec|kill)
      if [ -e "$tmp/flag-slow-\$a" ]; then
        rm -f "$tmp/flag-slow-\$a"
        : >"$tmp/flag-in-\$a"
        while [ ! -e "$tmp/flag-go-\$a" ]; do sleep 0.05; done
      fi
      break ;;
  esac
done
exec runc "\$@"
SH
  chmod 0755 "$wrap"
  printf 'version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtime: %s\n' "$wrap" >"$cfg"
  rm -f "$tmp"/flag-*
  crash_during() { # <subcommand> <ctr args...>: runs ctr in the background, SEGVs the shim while
    local sub=$1 i             # the runtime command waits, lets it go on; ctr's status in $rc
    shift
    : >"$tmp/flag-slow-$sub"
    ctr_ "$@" >"$tmp/busy-$sub.out" 2>&1 &
    local cpid=$!
    for i in $(seq 300); do [ -e "$tmp/flag-in-$sub" ] && break; sleep 0.1; done
    [ -e "$tmp/flag-in-$sub" ] || { echo "runc $sub never ran"; kill $cpid; return 1; }
    shim=$(shim_of $id) || { echo "no shim"; return 1; }
    kill -SEGV "$shim"
    sleep 0.5
    : >"$tmp/flag-go-$sub"
    wait $cpid
    rc=$?
    echo "ctr $* -> $rc: $(cat "$tmp/busy-$sub.out")"
    kill -0 "$shim" || {
      echo "the shim died; its last words:"
      grep -E "cshim:|restart|crash|upgrade:|level=(error|warning)" "$tmp/containerd.log" | grep -v "loading plugin" | tail -15
      return 1
    }
  }
  crash_during start run --runtime "$runtime" --runtime-config-path "$cfg" -d --rootfs "$rootfs" \
    $id /bin/sleep 1000 || return 1
  [ "$rc" = 0 ] || { echo "ctr run failed across the crash"; bad=1; }
  wait_status $id RUNNING 50 || { echo "$id: $(task_status $id)"; remove_task $id; return 1; }
  pid=$(task_pid $id)
  crash_during exec task exec -d --exec-id e1 $id /bin/sleep 1000 || { remove_task $id; return 1; }
  [ "$rc" = 0 ] || { echo "ctr task exec failed across the crash"; bad=1; }
  epid=$(ctr_ task ps $id | awk '$1 != "PID" && $1 != '"$pid"' { print $1 }' | head -1)
  [ -n "$epid" ] || { echo "the exec process is not listed"; bad=1; }
  [ "$(task_pid $id)" = "$pid" ] && [ "$(task_status $id)" = RUNNING ] || { echo "$id changed"; bad=1; }
  crash_during kill task kill -s SIGKILL $id || { remove_task $id; return 1; }
  [ "$rc" != 0 ] || { echo "kill answered OK: it was being handled at the crash"; bad=1; }
  grep -q "restarted after a crash while handling the call; retry" "$tmp/busy-kill.out" \
    || { echo "kill failed without saying why"; bad=1; }
  wait_status $id STOPPED 100 || { echo "$id not STOPPED after the kill: $(task_status $id)"; bad=1; }
  no_disconnect $id || bad=1
  out=$(ctr_ task delete $id 2>&1)
  echo "delete: $out"
  [[ "$out" == *137* ]] || { echo "delete did not report 137"; bad=1; }
  ctr_ container delete $id >/dev/null 2>&1
  [ "$(grep -c "crash recovery: " "$tmp/containerd.log")" -ge 2 ] || { echo "no recovery logged"; bad=1; }
  grep "crash recovery: " "$tmp/containerd.log" | tail -3
  return $bad
}

# cshimctl upgrade --all finds every shim through containerd's state directory: cshim shims are
# upgraded (a group once), containerd's own runc shim is skipped.
check_all() {
  local out rc c bad=0 runc_shim=
  for c in up-a1 up-a2; do
    ctr_ run --runtime "$runtime" -d --rootfs "$rootfs" $c /bin/sleep 1000 >/dev/null || { echo "run $c"; return 1; }
  done
  for c in up-a3 up-a4; do
    ctr_ run --runtime "$runtime" -d --annotation=io.containerd.runc.v2.group=up-all \
      --rootfs "$rootfs" $c /bin/sleep 1000 >/dev/null || { echo "run $c"; return 1; }
  done
  if command -v containerd-shim-runc-v2 >/dev/null; then
    ctr_ run --runtime io.containerd.runc.v2 -d --rootfs "$rootfs" up-arunc /bin/sleep 1000 >/dev/null \
      && runc_shim=1
  fi
  for c in up-a1 up-a2 up-a3 up-a4; do wait_status $c RUNNING || { echo "$c not RUNNING"; bad=1; }; done
  out=$(ctl upgrade --all --state "$state" --binary "$prefix/bin/$shim_binary-next")
  rc=$?
  echo "$out"
  [ "$rc" = 0 ] || { echo "exit status $rc"; bad=1; }
  [ "$(grep -c ': upgraded$' <<<"$out")" = 3 ] || { echo "want 3 shims upgraded"; bad=1; }
  if [ -n "$runc_shim" ]; then
    [ "$(grep -c 'not a cshim shim: skipped' <<<"$out")" = 1 ] || { echo "the runc shim was not skipped"; bad=1; }
  fi
  for c in up-a1 up-a2 up-a3 up-a4; do
    [ "$(task_status $c)" = RUNNING ] || { echo "$c: $(task_status $c)"; bad=1; }
    no_disconnect $c || bad=1
    [ "$(readlink "/proc/$(shim_of $c 2>/dev/null || shim_of up-a3)/exe")" = "$prefix/bin/$shim_binary-next" ] \
      || { echo "$c: shim not on the new binary"; bad=1; }
  done
  for c in up-a1 up-a2 up-a3 up-a4 up-arunc; do remove_task $c; done
  return $bad
}

# A task that has exited but is not deleted keeps its status and exit code across an upgrade.
check_stopped() {
  local id=up-stop before after out
  ctr_ run --runtime "$runtime" -d --rootfs "$rootfs" $id /bin/sh -c 'exit 3' >/dev/null || { echo "run failed"; return 1; }
  wait_status $id STOPPED || { echo "not STOPPED: $(task_status $id)"; remove_task $id; return 1; }
  before=$(ctl -a "$(shim_address $id)" -n "$ns" --json state $id) || { echo "state failed"; remove_task $id; return 1; }
  out=$(ctl -a "$(shim_address $id)" upgrade --binary "$prefix/bin/$shim_binary-next") \
    || { echo "upgrade failed: $out"; remove_task $id; return 1; }
  after=$(ctl -a "$(shim_address $id)" -n "$ns" --json state $id) || { echo "state failed"; remove_task $id; return 1; }
  echo "before: $before"
  echo "after:  $after"
  [ "$before" = "$after" ] || { echo "state changed across the upgrade"; remove_task $id; return 1; }
  [[ "$after" == *'"exit_status": 3'* ]] || { echo "exit status lost"; remove_task $id; return 1; }
  [ "$(task_status $id)" = STOPPED ] || { echo "$id: $(task_status $id)"; remove_task $id; return 1; }
  no_disconnect $id || { remove_task $id; return 1; }
  ctr_ task delete $id >/dev/null || { echo "task delete failed"; remove_task $id; return 1; }
  ctr_ container delete $id >/dev/null
}

# ---- benchmark (run.sh <build> <next> --bench): pause per upgrade, 1 and 20 containers ----

bench_pauses() { # <label> <address> <runs>: prints p50 and max of the pause in ms
  local label=$1 addr=$2 runs=$3 i bin
  : >"$tmp/pauses"
  for i in $(seq "$runs"); do
    if [ $((i % 2)) = 1 ]; then bin="$prefix/bin/$shim_binary-next"; else bin="$prefix/bin/$shim_binary"; fi
    ctl -a "$addr" upgrade --json --binary "$bin" | sed -n 's/.*"pause_ns":\([0-9]*\).*/\1/p' >>"$tmp/pauses"
  done
  sort -n "$tmp/pauses" | awk -v label="$label" '{ v[NR] = $1 } END {
    printf "%-28s %5d %10.2f %10.2f\n", label, NR, v[int((NR + 1) / 2)] / 1e6, v[NR] / 1e6 }'
}

run_bench() {
  local runs=${CSHIM_BENCH_RUNS:-20} i t0 t1 n_shims=${CSHIM_BENCH_SHIMS:-20}
  ctr_ run --runtime "$runtime" -d --rootfs "$rootfs" b-one /bin/sleep 1000 >/dev/null
  for i in $(seq 20); do
    ctr_ run --runtime "$runtime" -d --annotation=io.containerd.runc.v2.group=b-grp \
      --rootfs "$rootfs" "b-g$i" /bin/sleep 1000 >/dev/null
  done
  for i in $(seq 2 "$n_shims"); do
    ctr_ run --runtime "$runtime" -d --rootfs "$rootfs" "b-s$i" /bin/sleep 1000 >/dev/null
  done
  printf "%-28s %5s %10s %10s\n" "shim" "runs" "p50 ms" "max ms"
  bench_pauses "1 container" "$(shim_address b-one)" "$runs"
  bench_pauses "20 containers (one group)" "$(shim_address b-g1)" "$runs"
  t0=$(date +%s%N)
  ctl upgrade --all --state "$state" --binary "$prefix/bin/$shim_binary-next" >"$tmp/all.txt"
  t1=$(date +%s%N)
  printf "upgrade --all: %d shims in %.0f ms (%s)\n" "$(grep -c ': upgraded$' "$tmp/all.txt")" \
    "$(( (t1 - t0) / 1000000 ))" "$(tail -n 1 "$tmp/all.txt")"
  for t in $(ctr_ task ls -q); do ctr_ task kill -s KILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $(ctr_ task ls -q); do ctr_ task delete "$t" >/dev/null 2>&1; done
  for c in $(ctr_ container ls -q); do ctr_ container delete "$c" >/dev/null 2>&1; done
}

# ---- setup ----

"${CMAKE:-cmake}" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 \
  || { echo "Bail out! cmake --install failed"; cat "$tmp/install.log"; exit 1; }
install -m 0755 "$next_src" "$prefix/bin/$shim_binary-next"

mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/tmp" "$rootfs/etc"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do
  [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"
done

cat >"$tmp/containerd.toml" <<TOML
version = 2
root = "$tmp/root"
state = "$state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  level = "${CSHIM_IT_LOG_LEVEL:-info}"
TOML

start_containerd || { echo "Bail out! containerd did not start"; exit 1; }

if [ "$bench" = --bench ]; then
  run_bench
  exit 0
fi

check "upgrade to a new binary: same pid, RUNNING, counter intact, Wait answered (137)" check_upgrade_to_next
check "SIGHUP re-executes the shim's own binary" check_sighup
check "broken binaries are refused or rolled back; everything keeps running" check_rollback
check "grouped shim, paused task, exec, file:// logger and terminal survive an upgrade" check_everything
check "fatal signals re-execute the shim (counter intact, 137); a fourth within 60 s ends it" check_crash
check "a crash while runc start/exec/kill runs: Start answered with the real outcome, kill says retry, 137" check_crash_busy
check "upgrade --all: every cshim shim once, other shims skipped" check_all
check "an exited task keeps its status and exit code across an upgrade" check_stopped

echo "1..$n"
echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  echo "# containerd log (last 40 lines):"
  tail -40 "$tmp/containerd.log" | sed 's/^/#   /'
  exit 1
fi
exit 0
