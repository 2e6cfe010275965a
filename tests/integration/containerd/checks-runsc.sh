# SPDX-License-Identifier: Apache-2.0
# Sourced by run.sh: checks of gVisor (runsc) as the OCI runtime, registered only when the run
# selects it (CSHIM_IT_OCI_RUNTIME=runsc, see setup-oci-runtime.sh), so that the numbers of the
# other checks do not move in any other run. The same checks run with cshim (runtime_args in its
# config) and with containerd's runc shim given a wrapper (the baseline).

# The workload runs in a gVisor sandbox: its kernel log is gVisor's; exec, exit codes of run and
# exec, pause/resume, kill and delete.
runsc_check_lifecycle() {
  local out rc st
  out=$(run_ --rm it-gv-dmesg /bin/dmesg) || { echo "ctr run dmesg failed: $out"; return 1; }
  [[ "$out" == *gVisor* ]] || { echo "not a gVisor kernel log: $out"; return 1; }
  run_ --rm it-gv-exit /bin/sh -c 'exit 7'
  rc=$?
  [ "$rc" = 7 ] || { echo "run: exit status $rc, want 7"; return 1; }

  run_ -d it-gv /bin/sleep 1000 || { echo "ctr run -d failed"; return 1; }
  wait_status it-gv RUNNING || { echo "not RUNNING"; remove_task it-gv; return 1; }
  out=$(ctr_ task exec --exec-id e1 it-gv /bin/echo from-exec 2>&1)
  [ "$out" = from-exec ] || { echo "exec: $out"; remove_task it-gv; return 1; }
  ctr_ task exec --exec-id e2 it-gv /bin/sh -c 'exit 5'
  rc=$?
  [ "$rc" = 5 ] || { echo "exec: exit status $rc, want 5"; remove_task it-gv; return 1; }
  ctr_ task pause it-gv || { echo "pause failed"; remove_task it-gv; return 1; }
  st=$(task_status it-gv)
  [ "$st" = PAUSED ] || { echo "after pause: $st"; remove_task it-gv; return 1; }
  ctr_ task resume it-gv || { echo "resume failed"; remove_task it-gv; return 1; }
  st=$(task_status it-gv)
  [ "$st" = RUNNING ] || { echo "after resume: $st"; remove_task it-gv; return 1; }
  ctr_ task kill -s SIGTERM it-gv || { echo "kill failed"; remove_task it-gv; return 1; }
  wait_status it-gv STOPPED || { echo "not STOPPED after SIGTERM"; remove_task it-gv; return 1; }
  ctr_ task delete it-gv || { echo "task delete failed"; remove_task it-gv; return 1; }
  ctr_ container delete it-gv || { echo "container delete failed"; return 1; }
}

# runsc without --network=none fails at start ("cannot run with network enabled in root network
# namespace"): containerd reports the error, and nothing stays behind, neither runsc's sandbox
# and gofer nor the shim (cshim only: containerd's runc shim leaves both, docs/runtimes.md).
runsc_check_failed_start_leaves_nothing() {
  local out cfg="$tmp/cshim-runsc-network.yaml"
  printf 'version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtime: %s\n    runtime_args: [--ignore-cgroups]\n' \
    "$tc_runsc" >"$cfg"
  if out=$(run_ -d --runtime-config-path "$cfg" it-gv-fail /bin/sleep 1000 2>&1); then
    echo "ctr run succeeded with runsc's default network"
    remove_task it-gv-fail
    return 1
  fi
  echo "ctr run: $out"
  runsc_nothing_left it-gv-fail
}

# Nothing of container <id> stays: no runsc process naming it (sandbox, gofer), no shim, not in
# runsc's list, no task or container in containerd.
runsc_nothing_left() {
  local id=$1 left i
  for i in $(seq 100); do
    left=$(pgrep -f "runsc.*$id" | wc -l)
    [ "$left" = 0 ] && [ -z "$(shims_under_tmp)" ] && break
    sleep 0.1
  done
  ctr_ task delete "$id" >/dev/null 2>&1
  ctr_ container delete "$id" >/dev/null 2>&1
  [ "$left" = 0 ] || { echo "runsc processes left:"; pgrep -af "runsc.*$id"; return 1; }
  [ -z "$(shims_under_tmp)" ] || { echo "shims left: $(shims_under_tmp)"; return 1; }
  "$tc_runsc" --root "$runc_root" list -q 2>/dev/null | grep -qx "$id" &&
    { echo "runsc still lists $id"; return 1; }
  return 0
}

# A restore runsc fails (containerd's checkpoint descriptor has no gVisor image: `runsc restore`
# has already started the sandbox and the gofer when it fails to open checkpoint.img): cshim
# removes both and ends; containerd's Delete that follows succeeds. Registered by
# checks-task-control.sh, whose Go client creates a task from a checkpoint.
runsc_check_failed_restore_leaves_nothing() {
  local id=it-gv-restore out dir
  tc_build_client || return 1
  out=$(tc_client_ -id "$id" -rootfs "$rootfs" restore 2>&1)
  echo "$out"
  dir=$(grep -o 'from `[^`]*`' <<<"$out" | head -1 | tr -d '`' | sed 's/^from //')
  case "$dir" in /tmp/ctrd-checkpoint*) rm -rf "$dir" ;; esac # containerd's, never removed by it
  [[ "$out" == *"start: "*"restore \`$id\` from"*"runsc restore:"* ]] ||
    { echo "Start did not fail in runsc restore"; runsc_nothing_left "$id"; return 1; }
  [[ "$out" != *"delete: "* ]] || { echo "containerd's Delete failed"; runsc_nothing_left "$id"; return 1; }
  runsc_nothing_left "$id" || return 1
  [ -z "$(task_status "$id")" ] || { echo "task left"; return 1; }
  ctr_ container ls -q 2>/dev/null | grep -qx "$id" && { echo "container left"; return 1; }
  return 0
}

# Metrics of a gVisor container, running and paused; the CPU figure is at most what the sandbox
# could have used since it started. With runsc managing cgroups they come from the sandbox's
# cgroup. With --ignore-cgroups the sandbox has no cgroup of its own: cshim answers from `runsc
# events --stats` (the sandbox kernel's memory usage and task count) with the CPU time of the
# sandbox's process tree, while containerd's runc shim (the baseline) reports the cgroup the
# sandbox sits in, its own. The baseline's figures are printed, not checked (the differences are
# in docs/runtimes.md).
runsc_metric() { awk -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
runsc_check_metrics() {
  local id=it-gv-metrics table paused start elapsed mem cpu scale m c p bound
  start=$(date +%s)
  run_ -d "$id" /bin/sleep 1000 || { echo "ctr run -d failed"; return 1; }
  wait_status "$id" RUNNING || { echo "not RUNNING"; remove_task "$id"; return 1; }
  ctr_ task exec --exec-id busy "$id" /bin/sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done' ||
    { echo "busy exec failed"; remove_task "$id"; return 1; }
  table=$(ctr_ task metrics "$id" 2>&1) || { echo "task metrics failed: $table"; remove_task "$id"; return 1; }
  ctr_ task pause "$id" || { echo "pause failed"; remove_task "$id"; return 1; }
  paused=$(ctr_ task metrics "$id" 2>&1)
  ctr_ task resume "$id" >/dev/null 2>&1
  remove_task "$id"
  elapsed=$(($(date +%s) - start + 1))
  echo "$table" | sed 's/^/# /'
  if grep -q '^memory.usage_in_bytes' <<<"$table"; then # v1 Metrics
    mem=memory.usage_in_bytes cpu=cpuacct.usage scale=1000000000
  else # v2 Metrics
    mem=memory.usage cpu=cpu.usage_usec scale=1000000
  fi
  m=$(runsc_metric "$table" "$mem") c=$(runsc_metric "$table" "$cpu") p=$(runsc_metric "$table" pids.current)
  bound=$((elapsed * $(nproc) * scale))
  if [ "$runtime" != io.containerd.cshim.v2 ]; then
    echo "# baseline: $mem '$m', $cpu '$c' ($bound would be all $(nproc) CPUs for ${elapsed}s), pids.current '$p'"
    [ -n "$m" ] || { echo "no metrics"; return 1; }
    return 0
  fi
  [ "${m:-0}" -gt 0 ] || { echo "$mem: '$m'"; return 1; }
  [ "${c:-0}" -gt 0 ] || { echo "$cpu: '$c'"; return 1; }
  [ "${p:-0}" -ge 1 ] || { echo "pids.current: '$p'"; return 1; }
  [ -n "$(runsc_metric "$paused" "$mem")" ] || { echo "no metrics while paused: $paused"; return 1; }
  [ "$c" -le "$bound" ] ||
    { echo "$cpu $c: more than the sandbox could use in ${elapsed}s on $(nproc) CPUs"; return 1; }
  return 0
}

if [ "${tc_oci_runtime:-runc}" = runsc ]; then
  check "runsc: gVisor kernel, run and exec exit codes, pause/resume, kill, delete" runsc_check_lifecycle
  check "runsc: task metrics (memory, cpu, pids), running and paused" runsc_check_metrics
  if [ "$runtime" = io.containerd.cshim.v2 ]; then
    check "runsc: a failed start leaves no sandbox, gofer or shim behind" runsc_check_failed_start_leaves_nothing
  fi
fi
