#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proves the SDK guards can fail: runs namespace.sh and abi.sh against deliberately broken
# copies of an installed SDK and checks each verdict. Prints TAP-style lines.
#
#   selftest.sh <install prefix> <sdk source dir> <baseline>
set -uo pipefail

prefix=$(realpath "$1")
sdk_src=$(realpath "$2")
baseline=$(realpath "$3")
here=$(dirname "$(realpath "$0")")
cc_=${CC:-cc}
tmp=$(mktemp -d /tmp/cshim-abi-selftest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

ok() {
  n=$((n + 1))
  echo "ok $n - $1"
}
not_ok() {
  n=$((n + 1))
  failed=$((failed + 1))
  echo "not ok $n - $1"
  [ -f "${2:-}" ] && sed 's/^/#   /' "$2" | tail -30
}

# expect <status> <description> <command...>: the command must exit with <status>.
expect() {
  local want=$1 what=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>&1 || rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$what"; else
    echo "# exit status $rc, expected $want"
    not_ok "$what" "$tmp/out"
  fi
}

# --- namespace.sh ------------------------------------------------------------------------------
mkdir -p "$tmp/bad/lib" "$tmp/bad/include"
cp -r "$prefix/include/cshim" "$tmp/bad/include/"
printf 'void *xmalloc(unsigned long n);\nvoid *xmalloc(unsigned long n) { return (void *)n; }\n' \
  >"$tmp/x.c"
"$cc_" -c -o "$tmp/x.o" "$tmp/x.c" && ar rcs "$tmp/bad/lib/libcshim_sdk.a" "$tmp/x.o"
printf '#define steal_pointer(p) (p)\ntypedef int bare_t;\n' >>"$tmp/bad/include/cshim/util.h"
expect 1 "namespace.sh refuses an archive and headers outside cshim_" \
  "$here/namespace.sh" "$tmp/bad"
if grep -q "symbol outside cshim_: xmalloc" "$tmp/out" && grep -q "steal_pointer" "$tmp/out" &&
  grep -q "bare_t" "$tmp/out"; then
  ok "... naming xmalloc, steal_pointer and bare_t"
else
  not_ok "... naming xmalloc, steal_pointer and bare_t" "$tmp/out"
fi
expect 0 "namespace.sh accepts the installed SDK" "$here/namespace.sh" "$prefix"

# --- abi.sh --------------------------------------------------------------------------------------
# variant <name> <sed expression> <header>: a copy of the installed headers with one change.
variant() {
  mkdir -p "$tmp/$1"
  cp -r "$prefix/include/cshim" "$tmp/$1/"
  sed -i "$2" "$tmp/$1/cshim/$3"
  if cmp -s "$prefix/include/cshim/$3" "$tmp/$1/cshim/$3"; then
    echo "# the change to $3 did not apply"
    return 1
  fi
}
abi() { "$here/abi.sh" check --sdk-src "$sdk_src" --include "$1" \
  --proto-include "$prefix/include/cshim/proto" --baseline "$baseline" --cc "$cc_"; }

expect 0 "abi.sh: the installed headers match the baseline" abi "$prefix/include"

variant middle 's|^  uint64_t published; |  uint64_t inserted;\n&|' publisher.h &&
  expect 1 "abi.sh refuses a member inserted in the middle of cshim_publisher_stats_t" \
    abi "$tmp/middle"
grep -q "inserted" "$tmp/out" && ok "... and the report names it" ||
  not_ok "... and the report names it" "$tmp/out"

variant swap 's|^  const char \*type;     /\* e.g. CSHIM_TYPE_TTRPC \*/|  const char *inserted;\n&|' \
  plugin.h && expect 1 "abi.sh refuses a member inserted before the plugin descriptor's type" \
  abi "$tmp/swap"

variant retype 's|^  uint64_t timeout_ms;       /\* per command|  uint32_t timeout_ms;       /* per command|' \
  runtime.h && expect 1 "abi.sh refuses a member whose type changed (runtime timeout_ms)" \
  abi "$tmp/retype"

# Appended after the descriptor's last member (the one before its closing brace).
variant append '/^struct cshim_plugin_s$/,/^};$/ s|^};$|  int (*appended_hook)(void *instance);\n};|' \
  plugin.h && expect 0 "abi.sh accepts a member appended to the plugin descriptor" \
  abi "$tmp/append"

# A function removed from the SDK (header and source): the most common incompatible change.
mkdir -p "$tmp/removed-sdk" "$tmp/removed"
cp -r "$sdk_src/src" "$sdk_src/abi" "$tmp/removed-sdk/"
cp -r "$prefix/include/cshim" "$tmp/removed/"
sed -i '/^const char \*cshim_sdk_version_string(void);/d' "$tmp/removed/cshim/version.h"
sed -i '/^const char \*$/,/^}$/d' "$tmp/removed-sdk/src/version.c"
if grep -q cshim_sdk_version_string "$tmp/removed/cshim/version.h" "$tmp/removed-sdk/src/version.c"; then
  not_ok "the removal of cshim_sdk_version_string did not apply"
else
  rc=0
  "$here/abi.sh" check --sdk-src "$tmp/removed-sdk" --include "$tmp/removed" \
    --proto-include "$prefix/include/cshim/proto" --baseline "$baseline" --cc "$cc_" \
    >"$tmp/out" 2>&1 || rc=$?
  if [ "$rc" -eq 1 ] && grep -q "cshim_sdk_version_string" "$tmp/out"; then
    ok "abi.sh refuses an SDK without cshim_sdk_version_string, naming it"
  else
    echo "# exit status $rc, expected 1"
    not_ok "abi.sh refuses an SDK without cshim_sdk_version_string, naming it" "$tmp/out"
  fi
fi

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
