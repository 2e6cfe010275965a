# SPDX-License-Identifier: Apache-2.0
# Checks sourced by run.sh (same shell, same helpers): exec processes, terminals and logging
# binaries through the private containerd with ctr and real runc. Terminals are driven under
# util-linux `script`, which gives ctr a pty of its own; input is piped into `script`.

exec_tools_missing() {
  command -v script >/dev/null || { echo "util-linux script is not installed"; return 0; }
  return 1
}

# in_pty <rows> <cols> <command...>: run the command (words quoted for the shell) on a pty of
# that size; `timeout --foreground` keeps ctr in the terminal's foreground process group.
in_pty() {
  local rows=$1 cols=$2 cmd
  shift 2
  cmd="stty rows $rows cols $cols; timeout --foreground 60 $(printf '%q ' "$@")"
  script -qec "$cmd" /dev/null
}

ctr_cmd=(ctr --address "$sock" --namespace "$ns")

# start_sleeper <id>: a detached container that stays up
start_sleeper() {
  run_ -d "$1" /bin/sleep 1000 >/dev/null || { echo "ctr run -d $1 failed"; return 1; }
  wait_status "$1" RUNNING || { echo "$1 not RUNNING: $(task_status "$1")"; remove_task "$1"; return 1; }
}

check_exec_output_and_status() {
  start_sleeper it-exec || return 1
  local out rc bad=0
  out=$(ctr_ task exec --exec-id e1 it-exec /bin/sh -c 'echo hi; echo there >&2; exit 4' 2>"$tmp/exec-err.txt")
  rc=$?
  [ "$out" = hi ] || { echo "stdout: '$out'"; bad=1; }
  [ "$(cat "$tmp/exec-err.txt")" = there ] || { echo "stderr: '$(cat "$tmp/exec-err.txt")'"; bad=1; }
  [ "$rc" = 4 ] || { echo "exit status $rc, want 4"; bad=1; }
  # the exec is gone after ctr deleted it: the same id works again
  out=$(ctr_ task exec --exec-id e1 it-exec /bin/echo again) || { echo "second exec e1 failed: $out"; bad=1; }
  [ "$out" = again ] || { echo "second exec said '$out'"; bad=1; }
  remove_task it-exec
  return $bad
}

check_exec_stdin() {
  start_sleeper it-execin || return 1
  local out bad=0
  out=$(printf 'abc\ndef\n' | ctr_ task exec --exec-id in1 it-execin /bin/cat)
  [ "$out" = "$(printf 'abc\ndef')" ] || { echo "cat echoed '$out'"; bad=1; }
  out=$(printf 'x y z\n' | ctr_ task exec --exec-id in2 it-execin /bin/wc -w)
  [ "$(echo $out)" = 3 ] || { echo "wc -w said '$out'"; bad=1; }
  remove_task it-execin
  return $bad
}

check_exec_duplicate_id() {
  start_sleeper it-execdup || return 1
  local out bad=0
  ctr_ task exec -d --exec-id dup it-execdup /bin/sleep 100 || { echo "first exec failed"; bad=1; }
  out=$(ctr_ task exec -d --exec-id dup it-execdup /bin/sleep 100 2>&1) && { echo "second exec with the same id worked"; bad=1; }
  [[ "$out" == *"already exists"* ]] || { echo "second exec said: $out"; bad=1; }
  # Pids lists the exec by its id (ProcessDetails)
  out=$(ctr_ task ps it-execdup)
  echo "task ps: $out"
  [[ "$out" == *dup* ]] || { echo "the exec is not in task ps"; bad=1; }
  ctr_ task kill --exec-id dup -s SIGKILL it-execdup || { echo "kill of the exec failed"; bad=1; }
  remove_task it-execdup
  return $bad
}

check_exec_events() {
  start_sleeper it-execev || return 1
  "${ctr_cmd[@]}" events >"$tmp/exec-events.txt" 2>&1 &
  events_pid=$!
  sleep 0.5
  ctr_ task exec --exec-id ev1 it-execev /bin/sh -c 'exit 5'
  sleep 1
  kill "$events_pid"
  wait "$events_pid" 2>/dev/null
  events_pid=
  remove_task it-execev
  local topics
  local want="/tasks/exec-added /tasks/exec-started /tasks/exit /tasks/delete "
  # containerd's runc shim (every version) publishes TaskDelete only for a container's init
  # process; runtime-v2.md says a shim SHOULD publish it for an exec too, and cshim does
  [ "$runtime" = io.containerd.runc.v2 ] && want="/tasks/exec-added /tasks/exec-started /tasks/exit "
  topics=$(grep "$ns" "$tmp/exec-events.txt" | grep 'ev1' | grep -o '/tasks/[a-z-]*' | tr '\n' ' ')
  [ "$topics" = "$want" ] \
    || { echo "topics naming ev1, in order: $topics"; cat "$tmp/exec-events.txt"; return 1; }
  grep '/tasks/exit' "$tmp/exec-events.txt" | grep ev1 | grep -q '"exit_status":5' \
    || grep '/tasks/exit' "$tmp/exec-events.txt" | grep ev1 | grep -q 'exit_status.*5' \
    || { echo "exit event:"; grep ev1 "$tmp/exec-events.txt"; return 1; }
}

check_run_tty() {
  exec_tools_missing && return 0
  local out
  out=$(in_pty 30 100 "${ctr_cmd[@]}" run --fifo-dir "$tmp/fifo" --runtime "$runtime" -t --rm --rootfs "$rootfs" \
    it-tty /bin/sh -c 'sleep 1; tty; stty size; exit 3' </dev/null)
  local rc=$?
  out=$(printf '%s' "$out" | tr -d '\r')
  echo "run -t said: $out"
  [[ "$out" == *"/dev/pts/"* ]] || { echo "no pts in: '$out'"; return 1; }
  [[ "$out" == *"30 100"* ]] || { echo "size not 30 100 in: '$out'"; return 1; }
  [ "$rc" = 3 ] || { echo "exit status $rc, want 3"; return 1; }
}

check_exec_tty() {
  exec_tools_missing && return 0
  start_sleeper it-exectty || return 1
  local out bad=0
  out=$(in_pty 25 90 "${ctr_cmd[@]}" task exec --fifo-dir "$tmp/fifo" -t --exec-id t1 it-exectty \
    /bin/sh -c 'sleep 1; tty; stty size' </dev/null | tr -d '\r')
  [[ "$out" == *"/dev/pts/"* ]] || { echo "no pts in: '$out'"; bad=1; }
  [[ "$out" == *"25 90"* ]] || { echo "size not 25 90 in: '$out'"; bad=1; }
  # input typed on the terminal reaches the process through the pty
  out=$( (sleep 2; printf 'typed\n'; sleep 2) | in_pty 25 90 "${ctr_cmd[@]}" task exec --fifo-dir "$tmp/fifo" -t \
    --exec-id t2 it-exectty /bin/sh -c 'read x; echo "got:$x"' | tr -d '\r')
  [[ "$out" == *"got:typed"* ]] || { echo "read through the terminal: '$out'"; bad=1; }
  remove_task it-exectty
  return $bad
}

build_test_logger() {
  [ -x "$tmp/test-logger" ] && return 0
  local src
  src="$(dirname "${BASH_SOURCE[0]}")/../../fixtures/logger/logger.c"
  command -v cc >/dev/null || { echo "no C compiler for the test logger"; return 1; }
  cc -O2 -o "$tmp/test-logger" "$src" || { echo "could not build $src"; return 1; }
}

check_log_uri_binary() {
  build_test_logger || return 1
  local f="$tmp/blog.txt" info="$tmp/blog-info.txt" bad=0
  run_ --rm --log-uri="binary://$tmp/test-logger?out=$f&info=$info" it-blog \
    /bin/sh -c 'echo b-out; echo b-err >&2' || { echo "ctr run failed"; bad=1; }
  grep -qx b-out "$f" && grep -qx b-err "$f" || { echo "log file:"; cat "$f"; bad=1; }
  grep -qx "env CONTAINER_ID=it-blog" "$info" && grep -qx "env CONTAINER_NAMESPACE=$ns" "$info" \
    || { echo "helper info:"; cat "$info"; bad=1; }
  [ "$(grep -c '^env ' "$info")" = 2 ] || { echo "helper environment:"; grep '^env ' "$info"; bad=1; }
  # an exec with its own logger
  start_sleeper it-blog2 || return 1
  ctr_ task exec --exec-id lx --log-uri="binary://$tmp/test-logger?out=$tmp/blog-exec.txt" \
    it-blog2 /bin/sh -c 'echo from-exec' || { echo "ctr task exec --log-uri failed"; bad=1; }
  grep -qx from-exec "$tmp/blog-exec.txt" || { echo "exec log:"; cat "$tmp/blog-exec.txt"; bad=1; }
  remove_task it-blog2
  return $bad
}

check_log_uri_binary_v2() {
  # binary-v2:// came with containerd 2.2: the runc shims of 1.6, 1.7 and 2.0-2.1 (Debian's
  # 2.1.9) answer "unknown STDIO scheme binary-v2"
  if [ "$runtime" = io.containerd.runc.v2 ]; then
    case "$(containerd-shim-runc-v2 -v 2>/dev/null | awk '/Version:/ { print $2 }')" in
      1.* | 2.0.* | 2.1.* | "")
        echo "# containerd-shim-runc-v2 has no binary-v2:// before 2.2: not checked"
        return 0
        ;;
    esac
  fi
  build_test_logger || return 1
  local out bad=0
  run_ --rm --log-uri="binary-v2://$tmp/test-logger?out=$tmp/b2.txt" it-b2 /bin/echo v2-ok \
    || { echo "ctr run with a ready helper failed"; bad=1; }
  grep -qx v2-ok "$tmp/b2.txt" || { echo "log file:"; cat "$tmp/b2.txt"; bad=1; }
  out=$(run_ --rm --log-uri="binary-v2://$tmp/test-logger?out=$tmp/b3.txt&ready=eof" it-b3 \
    /bin/echo never 2>&1) && { echo "ctr run worked although the helper never got ready"; bad=1; }
  [[ "$out" == *"without writing a byte"* ]] || { echo "error was: $out"; bad=1; }
  [ ! -s "$tmp/b3.txt" ] || { echo "the container ran: $(cat "$tmp/b3.txt")"; bad=1; }
  ctr_ container delete it-b3 >/dev/null 2>&1
  return $bad
}

check_exec_parallel() {
  start_sleeper it-execpar || return 1
  local i bad=0 pids=()
  for i in $(seq 20); do
    ctr_ task exec --exec-id "p$i" it-execpar /bin/sh -c "echo out-$i; exit $((i % 7))" \
      >"$tmp/par-exec-$i.out" 2>&1 &
    pids+=($!)
  done
  for i in $(seq 20); do
    wait "${pids[$((i - 1))]}"
    local rc=$?
    [ "$rc" = $((i % 7)) ] || { echo "exec p$i: status $rc, want $((i % 7)): $(cat "$tmp/par-exec-$i.out")"; bad=1; }
    [ "$(cat "$tmp/par-exec-$i.out")" = "out-$i" ] || { echo "exec p$i said: $(cat "$tmp/par-exec-$i.out")"; bad=1; }
  done
  # nothing is left behind in the bundle
  ls "$bundles/it-execpar" | grep -E '^p[0-9]+\.(pid|process\.json)$' && { echo "exec files left in the bundle"; bad=1; }
  remove_task it-execpar
  return $bad
}

# The calls ctr cannot make (ResizePty, CloseIO on a terminal, exec Delete/State details) through
# containerd 1.6's own Go task client, on a shim launched directly (no containerd involved).
check_go_task_client() {
  local grpc_sock=$sock sock_ttrpc=$sock.ttrpc # containerd's, before `sock` is ours
  local src gocode=/usr/share/gocode cache bundle sock shim_pid status=0
  src="$(dirname "${BASH_SOURCE[0]}")/../go/taskclient"
  if ! command -v go >/dev/null || [ ! -d "$gocode/src/github.com/containerd/containerd/runtime/v2/task" ]; then
    echo "# golang-go or golang-github-containerd-containerd-dev missing: not checked"
    return 0
  fi
  cache="${build:-$tmp}/go-taskclient-cache"
  (cd "$src" && GO111MODULE=off GOFLAGS= GOENV=off GOPROXY=off GOPATH="$tmp/gopath:$gocode" \
    GOCACHE="$cache" timeout 900 go build -o "$tmp/taskclient" .) || { echo "go build failed"; return 1; }
  bundle="$tmp/gobundle"
  sock="$tmp/go-shim.sock"
  mkdir -p "$bundle" "$tmp/gowork"
  cp -a "$rootfs" "$bundle/rootfs"
  runc spec --bundle "$bundle" || { echo "runc spec failed"; return 1; }
  # Where containerd runs in a private mount namespace (setup-oci-runtime.sh: crun on a hybrid
  # cgroup host), so does this shim.
  local wrap=()
  if [ "${CSHIM_IT_PRIVATE_MOUNTS:-0}" = 1 ] || { [ "${tc_oci_runtime:-runc}" = crun ] &&
    declare -F tc_unified_has_controllers >/dev/null && tc_unified_has_controllers; }; then
    wrap=(unshare --mount --propagation private -- bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' shim)
  fi
  # events go to the private containerd, which takes them although it knows no such task
  (cd "$bundle" && TTRPC_ADDRESS="$sock_ttrpc" CSHIM_CONFIG="${CSHIM_IT_CONFIG:-$prefix/etc/cshim/cshim.yaml}" \
    exec "${wrap[@]}" "$prefix/bin/containerd-shim-cshim-v2" -namespace "$ns" -id go-exec \
    -address "$grpc_sock" -socket "$sock") 2>"$tmp/go-shim.log" &
  shim_pid=$!
  # The socket file exists from bind(); wait until it listens (flag __SO_ACCEPTCON in /proc/net/unix).
  listening() { awk -v p="$sock" '$4 == "00010000" && $NF == p { f = 1 } END { exit !f }' /proc/net/unix; }
  for _ in $(seq 100); do listening && break; sleep 0.1; done
  listening || { echo "the shim did not listen"; cat "$tmp/go-shim.log"; kill -9 "$shim_pid"; return 1; }
  timeout 300 "$tmp/taskclient" -address "$sock" -bundle "$bundle" -work "$tmp/gowork" \
    -namespace "$ns" -id go-exec || status=1
  # Shutdown with no container left: the shim exits by itself
  for _ in $(seq 100); do kill -0 "$shim_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$shim_pid" 2>/dev/null; then
    echo "the shim is still running after Shutdown"
    kill -9 "$shim_pid"
    status=1
  fi
  wait "$shim_pid" 2>/dev/null
  [ "$status" = 0 ] || { echo "# shim log:"; tail -30 "$tmp/go-shim.log"; }
  return $status
}

check "exec: output, stderr and exit status" check_exec_output_and_status
check "exec: piped stdin reaches EOF" check_exec_stdin
check "exec: a duplicate exec id is refused; ps and kill of an exec" check_exec_duplicate_id
check "exec: events exec-added, exec-started, exit, delete" check_exec_events
check "exec: twenty at once in one container" check_exec_parallel
check "run -t: a pty with the client's size" check_run_tty
check "exec -t: a pty with the client's size, input through it" check_exec_tty
check "--log-uri binary:// for run and exec" check_log_uri_binary
check "--log-uri binary-v2:// readiness" check_log_uri_binary_v2
check "containerd's Go task client: exec, terminals, ResizePty, CloseIO" check_go_task_client
