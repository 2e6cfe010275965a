#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test driver for the installed SDK: installs this build into a temporary prefix, then
#   check:    sdk/abi/namespace.sh (only cshim_ symbols and names) and sdk/abi/abi.sh check
#             (the installed headers against the recorded 1.0 baseline);
#   selftest: sdk/abi/selftest.sh (the same guards fail on deliberately broken copies).
#
#   run.sh check|selftest <cmake build dir> <source dir>
# env: CMAKE (default cmake), CC (default cc).
set -uo pipefail

mode=$1
build=$(realpath "$2")
src=$(realpath "$3")
cmake_=${CMAKE:-cmake}
tmp=$(mktemp -d /tmp/cshim-sdk-it.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if ! "$cmake_" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1; then
  echo "Bail out! cmake --install of \`$build\` failed (is the build complete?)"
  sed 's/^/#   /' "$tmp/install.log" | tail -20
  exit 1
fi

case $mode in
check)
  rc=0
  "$src/sdk/abi/namespace.sh" "$tmp/prefix" || rc=1
  "$src/sdk/abi/abi.sh" check --sdk-src "$src/sdk" --include "$tmp/prefix/include" \
    --proto-include "$tmp/prefix/include/cshim/proto" \
    --baseline "$src/sdk/abi/cshim-sdk-1.0.abi" || rc=1
  if [ "$rc" -ne 0 ]; then
    echo "# an intended, compatible change (a function added, a member appended) passes; to"
    echo "# accept another change, bump the ABI and re-record: scripts/abi-record"
  fi
  exit "$rc"
  ;;
selftest)
  # not exec: the EXIT trap must still remove $tmp
  "$src/sdk/abi/selftest.sh" "$tmp/prefix" "$src/sdk" "$src/sdk/abi/cshim-sdk-1.0.abi"
  exit $?
  ;;
*)
  echo "usage: run.sh check|selftest <build dir> <source dir>" >&2
  exit 2
  ;;
esac
