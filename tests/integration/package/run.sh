#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages end to end: build (scripts/package, with lintian: no errors), check what
# they hold, install them with dpkg, run containers through a private containerd with the
# installed /usr/bin/containerd-shim-cshim-v2 (tests/integration/containerd/run.sh --prefix /usr),
# build the packaged vendor example against the installed cshim-dev, purge both packages and
# check that no file or directory of theirs is left. TAP-style output.
#
# usage: run.sh <source dir> <package build dir>
#
# Whatever happens, the packages this script installed are purged on exit and its temporary
# directory removed; it never removes a cshim package it did not install (it SKIPs instead).
set -uo pipefail
src=$(realpath "$1")
pkgbuild=$2

if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP needs root (dpkg -i, real containers)"
  exit 0
fi
for tool in dpkg dpkg-deb dpkg-buildflags dpkg-shlibdeps cpack containerd ctr runc busybox; do
  if ! command -v "$tool" >/dev/null; then
    echo "1..0 # SKIP $tool not installed"
    exit 0
  fi
done
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in cshim cshim-dev; do
  if installed "$p"; then
    echo "1..0 # SKIP package $p is already installed on this machine (not ours to remove)"
    exit 0
  fi
done

tmp=$(mktemp -d /tmp/cshim-pkg.XXXXXX)
we_installed=0
n=0
failed=0
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

# dpkg with its lock held by someone else (another apt-get) fails at once: retry for a while
dpkg_() {
  local i
  for i in $(seq 60); do
    if dpkg "$@" >"$tmp/dpkg.log" 2>&1; then return 0; fi
    grep -qi 'lock' "$tmp/dpkg.log" || break
    sleep 2
  done
  cat "$tmp/dpkg.log"
  return 1
}

cleanup() {
  set +e
  # a second signal must not cut the purge short
  trap - EXIT
  trap '' INT TERM
  if [ "$we_installed" = 1 ]; then
    for p in cshim-dev cshim; do
      if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
        dpkg_ --purge "$p" >/dev/null || echo "# cleanup: dpkg --purge $p failed"
      fi
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

result() { # <status> <name>
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    failed=$((failed + 1))
    echo "not ok $n - $2"
    [ -s "$tmp/out" ] && sed 's/^/#   /' "$tmp/out" | tail -30
  fi
  : >"$tmp/out"
}
bail() { echo "Bail out! $*"; exit 1; }

# ---- build and look at the packages ----
CSHIM_PACKAGE_LINTIAN=0 bash "$src/scripts/package" "$pkgbuild" >"$tmp/out" 2>&1
rc=$?
result $rc "scripts/package builds cshim and cshim-dev"
[ $rc -eq 0 ] || bail "no packages"
version=$(cd "$pkgbuild" && ls cshim_*.deb | sed -n 's/^cshim_\(.*\)_[^_]*\.deb$/\1/p')
deb="$pkgbuild/$(cd "$pkgbuild" && ls cshim_*.deb)"
devdeb="$pkgbuild/$(cd "$pkgbuild" && ls cshim-dev_*.deb)"
echo "# cshim $version: $deb"

if command -v lintian >/dev/null; then
  mkdir -p "$tmp/lintian" # lintian leaves its ELF index files (mldbm-elf-*) in TMPDIR
  TMPDIR="$tmp/lintian" lintian --fail-on error "$deb" "$devdeb" >"$tmp/out" 2>&1
  rc=$?
  sed -n 's/^\([WE]: .*\)/# lintian: \1/p' "$tmp/out"
  result $rc "lintian finds no errors"
else
  echo "ok $((n += 1)) - lintian finds no errors # SKIP lintian not installed"
fi

# an install() rule without COMPONENT lands in "Unspecified", which neither package ships
cmake --install "$pkgbuild" --component Unspecified --prefix "$tmp/unspecified" >/dev/null 2>&1
{ find "$tmp/unspecified" -mindepth 1 -not -type d 2>/dev/null | sed "s|^$tmp/unspecified/|in no package: |"; } >"$tmp/out"
[ -s "$tmp/out" ]
result $((!$?)) "every installed file belongs to cshim or cshim-dev (no install() without COMPONENT)"

lib=usr/lib/$multiarch
check_contents() { # <deb> <path>...: every path is in the package
  local deb=$1 p missing=0
  shift
  dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./||; s|/$||' >"$tmp/list"
  for p in "$@"; do
    grep -qx "$p" "$tmp/list" || { echo "missing from $(basename "$deb"): $p"; missing=1; }
  done
  return $missing
}
check_contents "$deb" usr/bin/containerd-shim-cshim-v2 usr/bin/cshimctl etc/cshim/cshim.yaml \
  "$lib/cshim/plugins/task.so" "$lib/cshim/plugins/publisher.so" "$lib/cshim/plugins/shutdown.so" \
  "$lib/cshim/plugins/debug.so" "$lib/cshim/plugins/tracing.so" \
  usr/share/man/man8/containerd-shim-cshim-v2.8.gz \
  usr/share/man/man8/cshimctl.8.gz usr/share/man/man5/cshim.yaml.5.gz \
  usr/share/bash-completion/completions/cshimctl usr/share/doc/cshim/copyright \
  usr/share/doc/cshim/changelog.Debian.gz usr/share/doc/cshim/containerd/cri-containerd-1.6.toml \
  usr/share/doc/cshim/containerd/cri-containerd-1.7.toml \
  usr/share/doc/cshim/containerd/cri-containerd-2.x.toml usr/share/doc/cshim/containerd/ctr.sh \
  usr/share/doc/cshim/containerd/runtimeclass.yaml >"$tmp/out" 2>&1
result $? "cshim holds the shim, modules under $lib, cshimctl, config, man pages, completion, snippets"
check_contents "$devdeb" usr/include/cshim/plugin.h "$lib/libcshim_sdk.a" "$lib/libcshim_proto.a" \
  "$lib/pkgconfig/cshim.pc" "$lib/cmake/cshim/cshimConfig.cmake" \
  usr/share/doc/cshim-dev/examples/vendor-task/vendor_task.c usr/share/doc/cshim-dev/copyright \
  >"$tmp/out" 2>&1
result $? "cshim-dev holds headers, static libraries, cshim.pc, the CMake package, the example"
{
  [ "$(dpkg-deb -f "$deb" Package)" = cshim ] || echo "Package: $(dpkg-deb -f "$deb" Package)"
  [ "$(dpkg-deb -I "$deb" conffiles)" = /etc/cshim/cshim.yaml ] \
    || echo "conffiles: $(dpkg-deb -I "$deb" conffiles)"
  # computed by dpkg-shlibdeps from the binaries, plus the dlopen-ed libnettle
  depends=$(dpkg-deb -f "$deb" Depends)
  for d in libc6 libuv1 libprotobuf-c1 libjansson4 libnettle; do
    [[ $depends == *"$d"* ]] || echo "Depends lacks $d: $depends"
  done
  # the project's own address, in both packages (no placeholder domain)
  for p in "$deb" "$devdeb"; do
    m=$(dpkg-deb -f "$p" Maintainer)
    [ "$m" = "cshim maintainers <maintainers@cshim.dev>" ] || echo "Maintainer of ${p##*/}: $m"
  done
} >"$tmp/out" 2>&1
[ -s "$tmp/out" ]
result $((!$?)) "control: conffile /etc/cshim/cshim.yaml, Depends from dpkg-shlibdeps, Maintainer"

# ---- install: nothing of ours may be there before ----
for p in $(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\.||'); do
  [ -e "$p" ] && bail "$p exists before installing: refusing to overwrite it"
done
we_installed=1
dpkg_ -i "$deb" "$devdeb" >"$tmp/out" 2>&1
rc=$?
result $rc "dpkg -i cshim cshim-dev"
[ $rc -eq 0 ] || bail "dpkg -i failed"
dpkg-query -L cshim cshim-dev | sort -u >"$tmp/owned"
: >"$tmp/owned-files"
: >"$tmp/owned-dirs"
while read -r p; do
  [ -n "$p" ] || continue
  if [ -d "$p" ] && [ ! -L "$p" ]; then echo "$p" >>"$tmp/owned-dirs"; else echo "$p" >>"$tmp/owned-files"; fi
done <"$tmp/owned"
echo "# installed $(wc -l <"$tmp/owned-files") files"

{
  /usr/bin/containerd-shim-cshim-v2 -v | grep -q "${version%-*}" || echo "containerd-shim-cshim-v2 -v: $(/usr/bin/containerd-shim-cshim-v2 -v 2>&1)"
  /usr/bin/cshimctl --version >/dev/null || echo "cshimctl --version failed"
  # cshim.pc is relocatable (prefix from its own location): compare the resolved path
  [ "$(realpath -m "$(pkg-config --variable=plugindir cshim)")" = "/$lib/cshim/plugins" ] \
    || echo "cshim.pc plugindir: $(pkg-config --variable=plugindir cshim)"
} >"$tmp/out" 2>&1
[ -s "$tmp/out" ]
result $((!$?)) "installed binaries run; cshim.pc names the packaged plugin dir"

# the installed bash completion, with bash-completion's two helpers stubbed (it may not be
# installed): commands, a command's options, debug's subcommands
cat >"$tmp/completion.sh" <<'SH'
_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD - 1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
_filedir() { COMPREPLY=(FILES); }
. /usr/share/bash-completion/completions/cshimctl
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _cshimctl; echo "${COMPREPLY[*]}"; }
[ "$(c cshimctl de)" = "delete debug" ] || echo "cshimctl de<TAB>: $(c cshimctl de)"
[ "$(c cshimctl --socket /s debug "")" = "metrics vars state profile" ] || echo "debug <TAB>: $(c cshimctl --socket /s debug "")"
[ "$(c cshimctl kill c1 --si)" = "--signal" ] || echo "kill --si<TAB>: $(c cshimctl kill c1 --si)"
SH
bash "$tmp/completion.sh" >"$tmp/out" 2>&1
[ -s "$tmp/out" ]
result $((!$?)) "bash completion of cshimctl completes commands and options"

# containers through a private containerd with the installed shim, config and modules: no
# CSHIM_CONFIG, no plugin_dir (run.sh with --prefix /usr)
CSHIM_IT_ONLY="check_hello check_exit_code check_stderr check_detached_kill_delete check_no_shim_left" \
  bash "$src/tests/integration/containerd/run.sh" --prefix /usr >"$tmp/out" 2>&1
rc=$?
grep -q '^5 passed, 0 failed$' "$tmp/out" || rc=1
result $rc "ctr run with /usr/bin/containerd-shim-cshim-v2 (hello, exit status, stderr, kill, no shim left)"

# the packaged shim reads the packaged config by itself: a mistake put into the conffile is what
# ctr reports (and purge must remove the modified conffile too)
echo "cshim_package_test_unknown_key: 1" >>/etc/cshim/cshim.yaml
CSHIM_IT_ONLY="check_hello" bash "$src/tests/integration/containerd/run.sh" --prefix /usr >"$tmp/run.log" 2>&1
{
  grep -q '^0 passed, 1 failed$' "$tmp/run.log" || echo "ctr run did not fail with a bad /etc/cshim/cshim.yaml"
  grep -q '/etc/cshim/cshim.yaml.*cshim_package_test_unknown_key' "$tmp/run.log" \
    || { echo "the error does not name /etc/cshim/cshim.yaml and the key:"; cat "$tmp/run.log"; }
} >"$tmp/out" 2>&1
[ -s "$tmp/out" ]
result $((!$?)) "the installed shim reads /etc/cshim/cshim.yaml (a bad key there reaches ctr)"

# a vendor's module against the installed cshim-dev, as its README says
cp -r /usr/share/doc/cshim-dev/examples/vendor-task "$tmp/vendor"
{
  cmake -S "$tmp/vendor" -B "$tmp/vendor-build" && cmake --build "$tmp/vendor-build" -j 2 \
    && [ -f "$tmp/vendor-build/vendor_task.so" ]
} >"$tmp/out" 2>&1
result $? "the packaged vendor example builds against the installed cshim-dev"

# ---- purge: nothing left ----
dpkg_ --purge cshim-dev cshim >"$tmp/out" 2>&1
rc=$?
result $rc "dpkg --purge cshim-dev cshim"
we_installed=0
{
  for p in cshim cshim-dev; do
    installed "$p" && echo "$p still installed"
  done
  while read -r p; do
    [ -e "$p" ] || [ -L "$p" ] && echo "left behind: $p"
  done <"$tmp/owned-files"
  # a directory may stay only when another package owns it too (/usr/bin, /usr/share/man/man8...)
  while read -r p; do
    [ -d "$p" ] && ! dpkg-query -S "$p" >/dev/null 2>&1 && echo "left behind: $p/"
  done <"$tmp/owned-dirs"
  [ -e /etc/cshim ] && echo "left behind: /etc/cshim"
} >"$tmp/out" 2>&1
[ -s "$tmp/out" ]
result $((!$?)) "after purge no file or directory of the packages is left"

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
