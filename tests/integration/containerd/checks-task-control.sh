# SPDX-License-Identifier: Apache-2.0
# Checks of Pause/Resume, Stats, OOM, Update, shim grouping, runtime options and
# checkpoint/restore through the private containerd of run.sh, which sources this file after its
# own checks (setup-oci-runtime.sh, sourced earlier, chose the OCI runtime: $tc_oci_runtime).

tc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tc_oci_runtime=${tc_oci_runtime:-runc}
tc_client=

# ---- helpers ----

# tc_with_events <name> <function>: runs the function while `ctr events` writes to
# $tmp/events-<name>.txt, and stops it whatever the function returns
tc_with_events() {
  local rc
  ctr --address "$sock" events >"$tmp/events-$1.txt" 2>&1 &
  events_pid=$!
  sleep 0.5
  "$2"
  rc=$?
  sleep 0.5
  kill "$events_pid" 2>/dev/null
  wait "$events_pid" 2>/dev/null
  events_pid=
  return $rc
}

# task topics of container <id> in events-<name>.txt, in order, space separated
tc_topics() { grep -a "\"container_id\":\"$2\"" "$tmp/events-$1.txt" | grep -ao '/tasks/[a-z-]*' | tr '\n' ' '; }

# the Go client (containerd's own client library, built offline from Debian's sources)
tc_build_client() {
  [ -n "$tc_client" ] && return 0
  command -v go >/dev/null || { echo "go is not installed (scripts/deps installs golang-go)"; return 1; }
  local cache="$tmp/gocache"
  [ -n "${build:-}" ] && cache="$build/go-cache"
  (cd "$tc_dir/client" && GO111MODULE=off GOFLAGS= GOENV=off GOPROXY=off \
    GOPATH="$tmp/gopath:/usr/share/gocode" GOCACHE="$cache" go build -o "$tmp/tc-client" .) ||
    { echo "go build of tests/integration/containerd/client failed"; return 1; }
  tc_client="$tmp/tc-client"
}

tc_client_() { timeout 90 "$tc_client" -address "$sock" -namespace "$ns" -runtime "$runtime" "$@"; }

# value of one `ctr task metrics` table row
tc_metric() { ctr_ task metrics "$1" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'; }

tc_shim_of() { # <bundle dir>: pid of the shim whose cwd it is
  local p
  for p in $(shims_under_tmp); do
    [ "$(readlink "/proc/$p/cwd")" = "$1" ] && echo "$p"
  done
}

# ---- the checks ----

tc_pause_resume() {
  local id=it-pause
  run_ -d "$id" /bin/sh -c 'while true; do sleep 0.1; done' || { echo "ctr run -d failed"; return 1; }
  wait_status "$id" RUNNING || { echo "not RUNNING"; remove_task "$id"; return 1; }
  ctr_ task pause "$id" || { echo "task pause failed"; remove_task "$id"; return 1; }
  [ "$(task_status "$id")" = PAUSED ] || { echo "after pause: $(task_status "$id")"; remove_task "$id"; return 1; }
  # a frozen task still answers metrics and ps
  [ -n "$(tc_metric "$id" pids.current)$(tc_metric "$id" memory.usage)" ] || { echo "no metrics while paused"; remove_task "$id"; return 1; }
  ctr_ task resume "$id" || { echo "task resume failed"; remove_task "$id"; return 1; }
  [ "$(task_status "$id")" = RUNNING ] || { echo "after resume: $(task_status "$id")"; remove_task "$id"; return 1; }
  ctr_ task resume "$id" >/dev/null 2>&1 && { echo "resuming a running task succeeded"; remove_task "$id"; return 1; }
  remove_task "$id"
}

tc_check_pause_resume() {
  local topics
  tc_with_events pause tc_pause_resume || return 1
  topics=$(tc_topics pause it-pause)
  case "$runtime:$topics" in
    *:"/tasks/create /tasks/start /tasks/paused /tasks/resumed /tasks/exit /tasks/delete ") ;;
    # containerd 2.x's runc shim (the baseline) may exit before its publisher has forwarded the
    # TaskDelete of a --rm run (as in tc_check_oom); cshim flushes its queue before it exits
    io.containerd.runc.v2:"/tasks/create /tasks/start /tasks/paused /tasks/resumed /tasks/exit ") ;;
    *) echo "topics: $topics"; return 1 ;;
  esac
}

tc_check_metrics() {
  local id=it-metrics table json
  run_ -d "$id" /bin/sleep 1000 || { echo "ctr run -d failed"; return 1; }
  wait_status "$id" RUNNING || { echo "not RUNNING"; remove_task "$id"; return 1; }
  table=$(ctr_ task metrics "$id") || { echo "task metrics failed: $table"; remove_task "$id"; return 1; }
  json=$(ctr_ task metrics --format json "$id")
  remove_task "$id"
  echo "$table"
  if grep -q '^memory.usage_in_bytes' <<<"$table"; then # cgroup v1
    [ "$(awk '$1 == "memory.usage_in_bytes" { print $2 }' <<<"$table")" -gt 0 ] || return 1
    [ "$(awk '$1 == "cpuacct.usage" { print $2 }' <<<"$table")" -gt 0 ] || return 1
    [ "$(awk '$1 == "pids.current" { print $2 }' <<<"$table")" -ge 1 ] || return 1
    # the JSON decodes the whole Metrics; rss may be 0 (pages charged as cache), and proto3
    # JSON leaves zero fields out, so look for what the table proved non-zero
    grep -q '"memory"' <<<"$json" && grep -q '"usage"' <<<"$json" && grep -q '"cpu"' <<<"$json" \
      || { echo "json: $json"; return 1; }
  else # cgroup v2
    [ "$(awk '$1 == "memory.usage" { print $2 }' <<<"$table")" -gt 0 ] || return 1
    [ "$(awk '$1 == "cpu.usage_usec" { print $2 }' <<<"$table")" -gt 0 ] || return 1
    grep -q '"anon"' <<<"$json" || { echo "json: $json"; return 1; }
  fi
  ctr_ task metrics it-none >/dev/null 2>&1 && { echo "metrics of a missing task succeeded"; return 1; }
  return 0
}

tc_oom() {
  local rc
  # the shell doubles a string until the 32 MiB limit kills it
  run_ --rm --memory-limit 33554432 it-oom /bin/sh -c 'x=0123456789abcdef; while true; do x=$x$x; done'
  rc=$?
  [ "$rc" = 137 ] || { echo "exit status $rc, want 137 (SIGKILL by the OOM killer)"; return 1; }
}

tc_check_oom() {
  local topics
  tc_with_events oom tc_oom || return 1
  # the cgroup v1 OOM eventfd may fire more than once for one OOM kill (cshim and containerd's
  # runc shim publish one TaskOOM per notification): repeats in a row count as one
  topics=$(tc_topics oom it-oom | tr ' ' '\n' | grep . | uniq | tr '\n' ' ')
  case "$runtime:$topics" in
    *:"/tasks/create /tasks/start /tasks/oom /tasks/exit /tasks/delete ") ;;
    # containerd 2.x's runc shim (the baseline) may exit before its publisher has forwarded the
    # TaskDelete of a --rm run; cshim flushes its queue before it exits
    io.containerd.runc.v2:"/tasks/create /tasks/start /tasks/oom /tasks/exit ") ;;
    # with runsc the OOM killer ends the whole sandbox at once: containerd 1.6's runc shim (the
    # baseline) then publishes TaskExit before TaskOOM about one run in ten (its OOM watch is
    # asynchronous); cshim looks for the kill before it publishes the exit
    io.containerd.runc.v2:"/tasks/create /tasks/start /tasks/exit /tasks/oom /tasks/delete ")
      [ "$tc_oci_runtime" = runsc ] || { echo "topics: $topics"; return 1; } ;;
    *) echo "topics: $topics"; cat "$tmp/events-oom.txt"; return 1 ;;
  esac
}

tc_check_update() {
  local id=it-update out mem pids
  tc_build_client || return 1
  run_ -d "$id" /bin/sleep 1000 || { echo "ctr run -d failed"; return 1; }
  wait_status "$id" RUNNING || { echo "not RUNNING"; remove_task "$id"; return 1; }
  out=$(tc_client_ -id "$id" -memory 50331648 -pids 32 update 2>&1) ||
    { echo "update: $out"; remove_task "$id"; return 1; }
  mem=$(tc_metric "$id" memory.limit_in_bytes)
  [ -n "$mem" ] || mem=$(tc_metric "$id" memory.usage_limit)
  pids=$(tc_metric "$id" pids.limit)
  remove_task "$id"
  [ "$mem" = 50331648 ] || { echo "memory limit after update: '$mem'"; return 1; }
  [ "$pids" = 32 ] || { echo "pids limit after update: '$pids'"; return 1; }
  out=$(tc_client_ -id "$id" -memory 50331648 update 2>&1) && { echo "update of a deleted task: $out"; return 1; }
  return 0
}

tc_check_grouping() {
  local a=it-grp1 b=it-grp2 shim addr_a addr_b i
  run_ -d --annotation=io.containerd.runc.v2.group=it-grp "$a" /bin/sleep 1000 ||
    { echo "ctr run -d $a failed"; return 1; }
  # the CRI sandbox annotation names the same group
  run_ -d --annotation=io.kubernetes.cri.sandbox-id=it-grp "$b" /bin/sleep 1000 ||
    { echo "ctr run -d $b failed"; remove_task "$a"; return 1; }
  wait_status "$a" RUNNING && wait_status "$b" RUNNING || { echo "not RUNNING"; remove_task "$a"; remove_task "$b"; return 1; }
  addr_a=$(cat "$bundles/$a/address") addr_b=$(cat "$bundles/$b/address")
  [ "$addr_a" = "$addr_b" ] || { echo "addresses differ: $addr_a $addr_b"; remove_task "$a"; remove_task "$b"; return 1; }
  # one daemon, started in a's bundle; b's `start` found it and started none (counting every
  # shim would race with earlier checks' shims still exiting)
  [ "$(tc_shim_of "$bundles/$a" | wc -l)" = 1 ] && [ -z "$(tc_shim_of "$bundles/$b")" ] ||
    { echo "shims in a's bundle: $(tc_shim_of "$bundles/$a" | xargs), in b's: $(tc_shim_of "$bundles/$b" | xargs)"; remove_task "$a"; remove_task "$b"; return 1; }
  shim=$(tc_shim_of "$bundles/$a")
  [ -n "$shim" ] || { echo "no shim runs in $a's bundle"; remove_task "$a"; remove_task "$b"; return 1; }
  # containerd 2.x: b's start found a's shim, asked it for task API v3 and got it, so b is
  # driven with v3 too (a shim that did not serve v3 would keep the bare address: #10888)
  if [ "${ctrd_major:-1}" -ge 2 ]; then
    grep "connecting to shim $b" "$tmp/containerd.log" | tail -1 | grep -q 'version=3' ||
      { echo "$b: $(grep "connecting to shim $b" "$tmp/containerd.log" | tail -1)"; remove_task "$a"; remove_task "$b"; return 1; }
  fi
  # the first container goes (with the bundle the shim runs in): the shim stays for the second
  remove_task "$a"
  sleep 0.5
  kill -0 "$shim" 2>/dev/null || { echo "the shim exited with $b still running"; remove_task "$b"; return 1; }
  [ "$(task_status "$b")" = RUNNING ] || { echo "$b: $(task_status "$b")"; remove_task "$b"; return 1; }
  ctr_ task pause "$b" && ctr_ task resume "$b" || { echo "pause/resume of $b failed"; remove_task "$b"; return 1; }
  remove_task "$b"
  for i in $(seq 50); do kill -0 "$shim" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$shim" 2>/dev/null && { echo "shim $shim still running after both tasks were deleted"; return 1; }
  [ -S "${addr_a#unix://}" ] && { echo "socket ${addr_a#unix://} left"; return 1; }
  return 0
}

tc_check_runtime_options() {
  local id=it-opts wrap="$tmp/bin/oci-wrap" log="$tmp/oci-wrap.log" root="$tmp/rt-root" cg opts pid shim out i
  tc_build_client || return 1
  mkdir -p "$tmp/bin" "$tmp/fifo"
  printf '#!/bin/sh\necho "$*" >>%s\nexec %s "$@"\n' "$log" "$(command -v "$tc_oci_runtime")" >"$wrap"
  chmod +x "$wrap"
  # shim_cgroup: start moves the shim daemon there (v1: into every hierarchy that has the path)
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then cg=/sys/fs/cgroup/cshim-it-${tmp##*.}
  else cg=/sys/fs/cgroup/pids/cshim-it-${tmp##*.}; fi
  mkdir -p "$cg" && tc_cgroups+=("$cg")
  opts="{\"binary_name\":\"$wrap\",\"root\":\"$root\",\"no_pivot_root\":true,\"no_new_keyring\":true"
  opts+=",\"io_uid\":1234,\"io_gid\":5678,\"shim_cgroup\":\"/${cg##*/}\""
  # criu_path is runc's global --criu (crun has no such flag, nor checkpoint support)
  [ "$tc_oci_runtime" = runc ] && opts+=",\"criu_path\":\"$(command -v criu || echo /usr/sbin/criu)\""
  opts+="}"
  pid=$(tc_client_ -id "$id" -rootfs "$rootfs" -fifo-dir "$tmp/fifo" -options "$opts" run 2>&1) ||
    { echo "client run: $pid"; remove_task "$id"; return 1; }
  shim=$(tc_shim_of "$bundles/$id")
  out=$(stat -L -c %g "/proc/$pid/fd/1" 2>&1)
  local fails=()
  # runc gives the pipes to the container's user but keeps their group, the shim's io_gid; crun
  # gives them user and group of the process (as it does under containerd's runc shim)
  case "$tc_oci_runtime" in
    runc) [ "$out" = 5678 ] || fails+=("stdout pipe group $out, want 5678") ;;
    *) echo "# $tc_oci_runtime re-owns the stdio pipes: io_uid/io_gid not observable" ;;
  esac
  grep -q -- "--root $root/$ns .* create .*--no-pivot --no-new-keyring $id\$" "$log" || fails+=("create argv")
  # containerd's runc shim passes criu_path as runc's global --criu only up to 1.6 (1.7's go-runc
  # dropped it; 2.x reserves the field): the baseline on 1.7 and 2.x expects no --criu
  local want_criu=1
  if [ "$runtime" = io.containerd.runc.v2 ]; then
    case "$(containerd-shim-runc-v2 -v 2>/dev/null | awk '/Version:/ { print $2 }')" in
      1.6.*) ;;
      *) want_criu=0 ;;
    esac
  fi
  [ "$tc_oci_runtime" != runc ] || [ "$want_criu" = 0 ] || grep -q -- "--criu [^ ]* create " "$log" || fails+=("no --criu")
  [ -d "$root/$ns/$id" ] || fails+=("no runtime state in $root/$ns/$id")
  grep -qx "$shim" "$cg/cgroup.procs" || fails+=("shim $shim not in $cg")
  grep -q "\"binary_name\":\"$wrap\"" "$bundles/$id/options.json" || fails+=("options.json: $(cat "$bundles/$id/options.json")")
  remove_task "$id"
  # containerd's cleanup ran `<shim> delete`, which found the runtime again in options.json
  grep -q -- " delete --force $id\$" "$log" || fails+=("shim delete did not use the options' runtime")
  [ -d "$root/$ns/$id" ] && fails+=("runtime state left in $root/$ns/$id")
  [ "${#fails[@]}" = 0 ] || { printf '%s\n' "${fails[@]}"; echo "runtime argv:"; cat "$log"; return 1; }
}

tc_check_checkpoint() {
  local id=it-ckpt out rc
  run_ -d "$id" /bin/sleep 1000 || { echo "ctr run -d failed"; return 1; }
  wait_status "$id" RUNNING || { echo "not RUNNING"; remove_task "$id"; return 1; }
  out=$(ctr_ task checkpoint "$id" 2>&1)
  rc=$?
  echo "ctr task checkpoint: rc=$rc $out"
  if [ "$tc_oci_runtime" = runc ] && criu check >/dev/null 2>&1; then
    [ "$rc" = 0 ] || { remove_task "$id"; return 1; }
    [ "$(task_status "$id")" = RUNNING ] || { echo "not left running"; remove_task "$id"; return 1; }
  else
    # the machine cannot checkpoint: the runtime's own reason must come back, and nothing stops
    [ "$rc" != 0 ] || { echo "checkpoint succeeded although criu check fails"; remove_task "$id"; return 1; }
    case "$tc_oci_runtime:$out" in
      runc:*criu*) [ -s "$bundles/$id/criu-dump.log" ] || { echo "no criu-dump.log kept"; remove_task "$id"; return 1; } ;;
      crun:*"unknown command checkpoint"*) ;;
      *) echo "unexpected error"; remove_task "$id"; return 1 ;;
    esac
    [ "$(task_status "$id")" = RUNNING ] || { echo "task is $(task_status "$id") after a failed checkpoint"; remove_task "$id"; return 1; }
  fi
  remove_task "$id"
}

tc_check_restore() {
  local id=it-restore out dir
  tc_build_client || return 1
  out=$(tc_client_ -id "$id" -rootfs "$rootfs" restore 2>&1)
  echo "$out"
  dir=$(grep -o 'from `[^`]*`' <<<"$out" | head -1 | tr -d '`' | sed 's/^from //')
  case "$dir" in /tmp/ctrd-checkpoint*) rm -rf "$dir" ;; esac # containerd's, never removed by it
  grep -qx 'create pid=0' <<<"$out" || { echo "Create from a checkpoint must not run the runtime yet"; return 1; }
  case "$tc_oci_runtime:$out" in
    runc:*"start: "*"restore \`$id\` from"*"runc restore:"*) ;;
    # crun 1.8 (Debian) has no restore command; it says so on the container's stderr
    crun:*"start: "*"restore \`$id\` from"*"crun restore:"*) ;;
    # runsc has its own image format: this fake checkpoint has no checkpoint.img
    runsc:*"start: "*"restore \`$id\` from"*"runsc restore:"*) ;;
    # containerd's own runc shim (the baseline) reads the checkpoint's descriptors.json before it
    # runs runc restore; this fake checkpoint has none, so its restore fails there
    *:*"start: "*"OCI runtime restore failed"*) [ "$runtime" = io.containerd.runc.v2 ] || { echo "Start did not reach the runtime's restore"; return 1; } ;;
    *) echo "Start did not reach the runtime's restore"; return 1 ;;
  esac
  [ -z "$(task_status "$id")" ] || { echo "task left"; remove_task "$id"; return 1; }
  ctr_ container ls -q 2>/dev/null | grep -qx "$id" && { echo "container left"; ctr_ container delete "$id"; return 1; }
  return 0
}

tc_unified_has_controllers() {
  grep -q ' /sys/fs/cgroup/unified .* - cgroup2 ' /proc/self/mountinfo &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}

task_control_checks() {
  echo "# OCI runtime: $tc_oci_runtime; cgroups: $(stat -f -c %T /sys/fs/cgroup)$(tc_unified_has_controllers && echo ' (hybrid, cgroup2 with controllers)')"
  echo "# criu check: $(criu check 2>&1 | tail -1)"
  check "pause and resume: PAUSED in task ls, paused/resumed events" tc_check_pause_resume
  check "task metrics prints cgroup memory, cpu and pids" tc_check_metrics
  check "OOM-killed container: /tasks/oom before /tasks/exit" tc_check_oom
  check "Update (Go client) changes memory and pids limits" tc_check_update
  check "grouped containers share one shim, which exits after the last" tc_check_grouping
  check "runc options: binary_name, root, no_pivot, no_new_keyring, io_gid, criu_path, shim_cgroup" tc_check_runtime_options
  check "checkpoint: CRIU's answer comes back (success only where criu works)" tc_check_checkpoint
  check "restore: Create from a checkpoint, Start runs the runtime's restore" tc_check_restore
  # checks-runsc.sh's, registered here where the Go client is defined
  if [ "$tc_oci_runtime" = runsc ] && [ "$runtime" = io.containerd.cshim.v2 ]; then
    check "runsc: a failed restore leaves no sandbox, gofer or shim behind" runsc_check_failed_restore_leaves_nothing
  fi
}
task_control_checks
