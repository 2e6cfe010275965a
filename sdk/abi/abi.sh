#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The SDK's ABI guard. abidiff cannot read a static archive, so this compiles the SDK's sources
# and sdk/abi/probe.c (which reaches every public type) into a shared probe library with debug
# info, against a given header directory (the installed one, or a changed copy), and then
#   check:  compares it with the recorded baseline; exits 0 when the ABI is the baseline's or a
#           compatible extension of it (functions added, members appended to cshim_*_s structs),
#           1 with abidiff's report on any other change, 2 on a usage or tool error;
#   record: writes the baseline (abixml) instead.
#
#   abi.sh check|record --sdk-src DIR --include DIR --proto-include DIR --baseline FILE
#          [--cc CC] [--work DIR]
# --sdk-src is the tree's sdk/ (src/*.c and abi/), --include holds cshim/*.h, --proto-include
# the generated protobuf-c headers (google/protobuf/any.pb-c.h...). Needs abigail-tools.
set -euo pipefail

mode=${1:-}
shift || true
sdk_src= include= proto_include= baseline= cc_=${CC:-cc} work=
while [ $# -gt 0 ]; do
  case $1 in
  --sdk-src) sdk_src=$2 ;;
  --include) include=$2 ;;
  --proto-include) proto_include=$2 ;;
  --baseline) baseline=$2 ;;
  --cc) cc_=$2 ;;
  --work) work=$2 ;;
  *)
    echo "abi.sh: unknown argument \`$1\`" >&2
    exit 2
    ;;
  esac
  shift 2
done
case $mode in check | record) ;; *)
  echo "usage: abi.sh check|record --sdk-src DIR --include DIR --proto-include DIR --baseline FILE" >&2
  exit 2
  ;;
esac
for v in sdk_src include proto_include baseline; do
  if [ -z "${!v}" ]; then
    echo "abi.sh: --${v//_/-} is required" >&2
    exit 2
  fi
done
for tool in abidw abidiff pkg-config; do
  if ! command -v "$tool" >/dev/null; then
    echo "abi.sh: \`$tool\` not found (Debian: apt-get install abigail-tools pkg-config)" >&2
    exit 2
  fi
done

own_work=
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/cshim-abi.XXXXXX)
  own_work=$work
fi
trap '[ -z "$own_work" ] || rm -rf "$own_work"' EXIT

read -r -a dep_cflags <<<"$(pkg-config --cflags libuv jansson libprotobuf-c)"
probe=$work/libcshim_sdk_abi_probe.so
# -O0 -g: every function and type with its full debug info; the SDK's own flags do not matter
# for its ABI. Default visibility: every SDK function is exported, as it is to a module.
if ! "$cc_" -std=gnu11 -g -O0 -fPIC -shared -o "$probe" "$sdk_src"/abi/probe.c "$sdk_src"/src/*.c \
  -fdebug-prefix-map="$PWD"=. -I"$sdk_src/abi" -I"$include" -I"$proto_include" "${dep_cflags[@]}" \
  2>"$work/cc.log"; then
  echo "abi.sh: the probe library does not compile:" >&2
  cat "$work/cc.log" >&2
  exit 2
fi

# Only types defined in the public headers (and the probe's) belong to the ABI.
headers=(--headers-dir "$include/cshim" --headers-dir "$sdk_src/abi")
if [ "$mode" = record ]; then
  abidw --no-corpus-path --drop-private-types "${headers[@]}" --out-file "$baseline" "$probe"
  echo "abi.sh: recorded $(grep -c '<elf-symbol ' "$baseline") symbols in $baseline"
  exit 0
fi

rc=0
abidiff --no-added-syms --suppressions "$sdk_src/abi/appended-members.supp" \
  --headers-dir2 "$include/cshim" --headers-dir2 "$sdk_src/abi" --drop-private-types \
  "$baseline" "$probe" >"$work/report.txt" 2>&1 || rc=$?
# abidiff's status is a bit mask: 1 tool error, 2 usage error, 4 ABI change, 8 incompatible.
if [ $((rc & 3)) -ne 0 ]; then
  echo "abi.sh: abidiff failed (status $rc):" >&2
  cat "$work/report.txt" >&2
  exit 2
fi
if [ "$rc" -ne 0 ]; then
  echo "abi.sh: the SDK's ABI is not compatible with $(basename "$baseline"):"
  cat "$work/report.txt"
  exit 1
fi
echo "abi.sh: the SDK's ABI is compatible with $(basename "$baseline")"
