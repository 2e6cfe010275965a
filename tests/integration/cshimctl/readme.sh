#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# README's cshimctl walk-through, run as written: its sh blocks (the bundle, then launch, the task
# calls and teardown) are taken from README.md and run with `bash -e` against this build
# installed in a temporary prefix (cshimctl and the shim on PATH, as after installing). Only the
# demo directory (/tmp/demo) and the namespace (demo) are replaced by private ones, so that runs
# on a shared machine do not meet. Needs root, runc and a static busybox; SKIPs otherwise.
# TAP-style output.
#
#   readme.sh <README.md> <cmake build dir>      env: CMAKE (default cmake)
set -uo pipefail

readme=$(realpath "$1")
build=$(realpath "$2")
cmake_=${CMAKE:-cmake}

if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP needs root (runc containers)"
  exit 0
fi
for tool in runc busybox; do
  if ! command -v "$tool" >/dev/null; then
    echo "1..0 # SKIP $tool not installed"
    exit 0
  fi
done
# A static busybox is what the bundle's root filesystem needs (ldd fails on a static binary).
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  echo "1..0 # SKIP /bin/busybox is not a static busybox (Debian: busybox-static)"
  exit 0
fi

tmp=$(mktemp -d /tmp/cshim-readme.XXXXXX)
ns=readme-$$
n=0
failed=0

cleanup() {
  set +e
  local pid sock
  # Whatever the script left when it failed half-way: the events printer (in the script's
  # process group), the shim and its sockets, the container.
  [ -n "${walk_group:-}" ] && kill -KILL -- "-$walk_group" 2>/dev/null
  if pid=$(cat "$tmp/demo/c1/shim.pid" 2>/dev/null) && kill -KILL "$pid" 2>/dev/null; then
    for sock in $(cat "$tmp/demo/c1/address" 2>/dev/null) \
      $(sed -n 's/^debug address: //p' "$tmp/out" 2>/dev/null); do
      rm -f "${sock#unix://}"
    done
  fi
  runc --root "/run/containerd/runc/$ns" delete --force c1 >/dev/null 2>&1
  rmdir "/run/containerd/runc/$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

result() { # <status> <description> [file to show on failure]
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    failed=$((failed + 1))
    echo "not ok $n - $2"
    [ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/#   /' "$3" | tail -60
  fi
}

"$cmake_" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1
result $? "cmake --install into a temporary prefix" "$tmp/install.log"

# The sh blocks of the cshimctl section, from its first paragraph to the next one ("Task
# commands: ...").
awk '/^`cshimctl` \(installed next to the shim\)/ { in_section = 1 }
     /^Task commands:/ { in_section = 0 }
     in_section && /^```sh$/ { in_block = 1; next }
     in_section && in_block && /^```$/ { in_block = 0; next }
     in_section && in_block { print }' "$readme" >"$tmp/walk.sh"
grep -q 'cshimctl launch' "$tmp/walk.sh" && grep -q 'runc spec' "$tmp/walk.sh" &&
  grep -q 'cshimctl teardown' "$tmp/walk.sh"
result $? "README's walk-through has the bundle, launch and teardown blocks" "$tmp/walk.sh"
sed -i -e "s|/tmp/demo|$tmp/demo|g" -e "s| -n demo | -n $ns |g" "$tmp/walk.sh"

# In a process group of its own, so that cleanup can end whatever it left running.
(cd "$tmp" && exec setsid env PATH="$tmp/prefix/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  timeout -k 5 120 bash -e "$tmp/walk.sh") >"$tmp/out" 2>&1 &
walk_group=$!
wait "$walk_group"
rc=$?
result $rc "the walk-through runs with bash -e and exits 0" "$tmp/out"
grep -q '^hello from c1$' "$tmp/out" && grep -q '^hi$' "$tmp/out"
result $? "the container's and the exec's output reach the file:// stdout" "$tmp/out"
grep -q '^type: io.containerd.cgroups.v[12].Metrics$' "$tmp/out" &&
  grep -Eq '^pids.current +[1-9]' "$tmp/out"
result $? "stats prints the decoded cgroup metrics" "$tmp/out"
grep -q 'exit status 137 at ' "$tmp/out"
result $? "kill, wait, delete and teardown report the exit" "$tmp/out"
[ ! -e "$tmp/demo" ]
result $? "the walk-through removes its demo directory"

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
