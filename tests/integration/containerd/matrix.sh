#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One cell of the version matrix: run.sh against containerd 1.6 (the system's, Debian 12), 1.7
# (Debian 13) or 2.x (Debian unstable), each with its own ctr and containerd-shim-runc-v2; the
# newer ones are Debian's packages unpacked by scripts/fetch-containerd (never installed).
#
# usage: matrix.sh <1.6|1.7|2> <cmake build dir>
# env:   CSHIM_IT_RUNTIME=io.containerd.runc.v2  the baseline: the same checks with that
#        containerd's own runc shim; everything else as for run.sh
# With 2.x, the upgrade check from 1.7 (checks-upgrade.sh) runs too.
# Prints "1..0 # SKIP <why>" when that containerd cannot be had (no network and no cache).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../../.." && pwd)
version=${1:?usage: matrix.sh <1.6|1.7|2> <build dir>}
build=${2:?usage: matrix.sh <1.6|1.7|2> <build dir>}

if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP needs root (real containers)"
  exit 0
fi

case "$version" in
  1.6)
    # Debian 12's own: the ones on PATH must be 1.6
    for tool in containerd ctr containerd-shim-runc-v2; do
      command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool not installed"; exit 0; }
    done
    case "$(containerd --version 2>/dev/null)" in
      *" 1.6."* | *" v1.6."*) ;;
      *) echo "1..0 # SKIP the containerd on PATH is not 1.6: $(containerd --version 2>&1)"; exit 0 ;;
    esac
    root=
    ;;
  1.7 | 2)
    out=$(bash "$top/scripts/fetch-containerd" "containerd-$version" 2>&1) || {
      echo "1..0 # SKIP cannot fetch containerd $version: $(tail -1 <<<"$out")"
      exit 0
    }
    root=$(awk -v s="containerd-$version" '$1 == s { print $2 }' <<<"$out")
    [ -x "$root/usr/bin/containerd" ] || { echo "1..0 # SKIP no containerd in $root"; exit 0; }
    ;;
  *) echo "usage: matrix.sh <1.6|1.7|2> <build dir>" >&2; exit 2 ;;
esac

# 2.x: also the upgrade from 1.7 (checks-upgrade.sh), when 1.7 can be had
if [ "$version" = 2 ] && out=$(bash "$top/scripts/fetch-containerd" containerd-1.7 2>/dev/null); then
  old=$(awk '$1 == "containerd-1.7" { print $2 }' <<<"$out")
  [ -x "$old/usr/bin/containerd" ] && export CSHIM_IT_UPGRADE_FROM="$old/usr/bin/containerd"
fi
if [ -n "$root" ]; then
  export CSHIM_IT_CONTAINERD="$root/usr/bin/containerd"
  export CSHIM_IT_CTR="$root/usr/bin/ctr"
  export CSHIM_IT_RUNC_SHIM="$root/usr/bin/containerd-shim-runc-v2"
fi
exec bash "$here/run.sh" "$build"
