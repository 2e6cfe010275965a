#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test driver: builds the Go reference client offline (GOPATH mode, Debian's containerd ttrpc),
# starts the real shim binary with the echo fixture on a temporary socket, runs the client
# against it, then stops the shim with SIGTERM and checks it exits 0 and removes its socket.
#
#   run.sh <shim binary> <client source dir> <work dir> <echo.so> <needs_echo.so> [<module>...]
#
# Extra modules (e.g. the real shutdown.so) are loaded too.
set -euo pipefail

shim=$1 src=$2 work=$3 echo_so=$4 needs_echo_so=$5
shift 5
extra_modules=("$@")
gocode=/usr/share/gocode

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

command -v go >/dev/null 2>&1 ||
  fail "golang is missing: install golang-go (scripts/deps does) to run the Go interoperability test"
for pkg in github.com/containerd/ttrpc github.com/containerd/containerd/namespaces; do
  [ -d "$gocode/src/$pkg" ] ||
    fail "$gocode/src/$pkg is missing: install golang-github-containerd-ttrpc-dev and golang-github-containerd-containerd-dev"
done
[ -x "$shim" ] || fail "shim binary \`$shim\` not found"

tmp=$(mktemp -d /tmp/cshim-go.XXXXXX)
shim_pid=
cleanup() {
  if [ -n "$shim_pid" ] && kill -0 "$shim_pid" 2>/dev/null; then
    kill -KILL "$shim_pid" 2>/dev/null || true
    wait "$shim_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$work"
echo "# building the Go client"
(cd "$src" && GO111MODULE=off GOFLAGS= GOENV=off GOPROXY=off GOPATH="$tmp/gopath:$gocode" GOCACHE="$work/gocache" \
  go build -o "$work/echoclient" .) || fail "go build of the client failed"

mkdir "$tmp/bundle"
sock=$tmp/shim.sock
{
  echo "log_level: debug"
  echo "modules:"
  for m in "$needs_echo_so" "$echo_so" "${extra_modules[@]}"; do
    echo "  - $m"
  done
  echo "plugins:"
  echo "  io.containerd.ttrpc.v1.echo:"
  echo "    prefix: \"go:\""
} >"$tmp/cshim.yaml"

(cd "$tmp/bundle" && CSHIM_CONFIG=$tmp/cshim.yaml exec "$shim" -namespace integration -id go-client \
  -address "$tmp/containerd.sock" -socket "$sock") 2>"$tmp/shim.log" &
shim_pid=$!

show_log() {
  echo "# shim log:"
  sed 's/^/#   /' "$tmp/shim.log"
}

for _ in $(seq 1 100); do
  [ -S "$sock" ] && break
  kill -0 "$shim_pid" 2>/dev/null || break
  sleep 0.1
done
if [ ! -S "$sock" ]; then
  show_log
  fail "the shim did not create its socket \`$sock\`"
fi

status=0
"$work/echoclient" -address "$sock" -prefix "go:" || status=$?

kill -TERM "$shim_pid"
shim_status=0
for _ in $(seq 1 150); do
  kill -0 "$shim_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$shim_pid" 2>/dev/null; then
  show_log
  fail "the shim did not exit within 15 s of SIGTERM"
fi
wait "$shim_pid" || shim_status=$?
shim_pid=
if [ "$shim_status" -ne 0 ]; then
  echo "not ok - shim exited with status $shim_status after SIGTERM"
  status=1
elif [ -e "$sock" ]; then
  echo "not ok - shim left its socket behind"
  status=1
else
  echo "ok - shim exited 0 on SIGTERM and removed its socket"
fi
[ "$status" -eq 0 ] || show_log
exit "$status"
