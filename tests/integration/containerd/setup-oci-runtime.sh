# SPDX-License-Identifier: Apache-2.0
# Sourced by run.sh before it starts containerd: picks the OCI runtime the shim drives and, where
# the host needs it, runs containerd and its shims in a private mount namespace.
#
# env: CSHIM_IT_OCI_RUNTIME=runsc  gVisor: a shim config naming runsc with runtime_args (unless
#        CSHIM_IT_CONFIG names one), $CSHIM_IT_RUNSC_ARGS (default "--network=none
#        --ignore-cgroups"); with CSHIM_IT_RUNTIME=io.containerd.runc.v2 a wrapper adding them
#        (ctr run --runc-binary). SKIPs when runsc cannot start a sandbox on this kernel.
#      CSHIM_IT_OCI_RUNTIME=crun  run the whole suite with crun: a shim config selecting it (unless
#        CSHIM_IT_CONFIG names one) and, on a hybrid cgroup host whose cgroup2 mount carries
#        controllers (crun 1.8 then refuses: "cgroups in hybrid mode not supported"), containerd
#        and its shims in a private mount namespace without that cgroup2 mount (pure v1 for
#        them; the host is untouched).
#      CSHIM_IT_PRIVATE_MOUNTS=1  that private mount namespace with any runtime.

tc_oci_runtime=${CSHIM_IT_OCI_RUNTIME:-runc}
tc_cgroups=() # cgroup directories checks create, removed at exit

if ! command -v "$tc_oci_runtime" >/dev/null; then
  echo "1..0 # SKIP $tc_oci_runtime not installed"
  exit 0
fi

tc_unified_has_controllers() {
  grep -q ' /sys/fs/cgroup/unified .* - cgroup2 ' /proc/self/mountinfo &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}

# gVisor: its own global flags through the config's runtime_args (no wrapper). The baseline
# (containerd's runc shim, which has no such key) gets them from a wrapper named by ctr run
# --runc-binary (the runc options' BinaryName). The run SKIPs when runsc cannot run a sandbox here.
tc_runsc_wrapper=
if [ "$tc_oci_runtime" = runsc ]; then
  tc_runsc=$(command -v runsc)
  read -r -a tc_runsc_args <<<"${CSHIM_IT_RUNSC_ARGS:---network=none --ignore-cgroups}"
  if ! tc_probe=$(timeout -k 5 60 "$tc_runsc" "${tc_runsc_args[@]}" --root "$tmp/runsc-probe" \
    do /bin/true 2>&1); then
    echo "1..0 # SKIP runsc cannot run a sandbox on this kernel: $(echo "$tc_probe" | tail -1)"
    exit 0
  fi
  rm -rf "$tmp/runsc-probe"
  if [ -z "${CSHIM_IT_CONFIG:-}" ]; then
    {
      printf 'version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtime: %s\n' "$tc_runsc"
      printf '    runtime_args:\n'
      for a in "${tc_runsc_args[@]}"; do printf '      - "%s"\n' "$a"; done
    } >"$tmp/cshim-runsc.yaml"
    CSHIM_IT_CONFIG="$tmp/cshim-runsc.yaml"
  fi
  tc_runsc_wrapper="$tmp/runsc-wrapper"
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$tc_runsc" "${tc_runsc_args[*]}" >"$tc_runsc_wrapper"
  chmod 0755 "$tc_runsc_wrapper"
  if [ "$runtime" = io.containerd.runc.v2 ]; then
    eval "tc_run_sh_$(declare -f run_)"
    run_() { tc_run_sh_run_ --runc-binary "$tc_runsc_wrapper" "$@"; }
  fi
  echo "# runsc $("$tc_runsc" --version 2>/dev/null | head -1 | awk '{ print $3 }') with ${tc_runsc_args[*]}"
fi

if [ "$tc_oci_runtime" != runc ] && [ -z "${CSHIM_IT_CONFIG:-}" ]; then
  printf 'version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtime: %s\n' \
    "$tc_oci_runtime" >"$tmp/cshim-$tc_oci_runtime.yaml"
  CSHIM_IT_CONFIG="$tmp/cshim-$tc_oci_runtime.yaml"
fi

if [ "${CSHIM_IT_PRIVATE_MOUNTS:-0}" = 1 ] ||
  { [ "$tc_oci_runtime" = crun ] && tc_unified_has_controllers; }; then
  echo "# containerd and its shims run in a private mount namespace without /sys/fs/cgroup/unified"
  start_containerd() {
    PATH="$prefix/bin:$PATH" CSHIM_CONFIG="${CSHIM_IT_CONFIG:-$prefix/etc/cshim/cshim.yaml}" \
      unshare --mount --propagation private -- \
      bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' containerd \
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
fi

# run.sh's cleanup, plus what these checks (and the runtime) can leave: containers of another
# OCI runtime, the cgroups made for shim_cgroup, and the per-namespace cgroup directories the
# runtime creates as parents of "/<namespace>/<id>" and never removes.
eval "tc_run_sh_$(declare -f cleanup)"
cleanup() {
  set +e
  if [ "$tc_oci_runtime" != runc ] && [ -d "$runc_root" ]; then
    local tc_global=()
    [ "$tc_oci_runtime" = runsc ] && tc_global=("${tc_runsc_args[@]}")
    for c in $("$tc_oci_runtime" --root "$runc_root" "${tc_global[@]}" list -q 2>/dev/null); do
      "$tc_oci_runtime" --root "$runc_root" "${tc_global[@]}" delete --force "$c" >/dev/null 2>&1
    done
  fi
  # runsc's sandbox and gofer processes of a container whose state went (a check that failed
  # half-way) survive the delete: they name our root on their command line.
  if [ "$tc_oci_runtime" = runsc ]; then
    for p in $(pgrep -f -- "--root=$runc_root( |$)" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  fi
  tc_run_sh_cleanup
  for d in "${tc_cgroups[@]}"; do rmdir "$d" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  return 0
}
trap cleanup EXIT

