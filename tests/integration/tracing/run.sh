#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tracing end to end. A local OTLP receiver records every span it is sent; then:
#   1. containerd 1.6 (the system's) with OTEL_EXPORTER_OTLP_ENDPOINT in its environment, so the
#      shim inherits it: `ctr run --rm` through cshim exports a span per RPC (roots: 1.6 sends no
#      trace context), runtime-command and stdio children whose parent is the RPC's span, under
#      the shim binary's service name; OTEL_EXPORTER_OTLP_HEADERS reach the collector; a live
#      upgrade goes through and the new image goes on exporting;
#   2. the same containerd without the variable: nothing is exported and a running shim has
#      neither tracing.so nor libcurl mapped;
#   3. containerd 2.x (scripts/fetch-containerd, SKIP when it cannot be had) exporting to the
#      same receiver: cshim's Create and Start spans are in containerd's trace, their parent a
#      containerd span.
# usage: run.sh <cmake build dir> <otlp_receiver binary>
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=${1:?usage: run.sh <build dir> <receiver>}
receiver=${2:?usage: run.sh <build dir> <receiver>}

if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP needs root (real containers)"; exit 0; fi
for tool in containerd ctr runc busybox; do
  command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool not installed"; exit 0; }
done

tmp=$(mktemp -d /tmp/cshim-trace.XXXXXX)
ns="cshim-trace-${tmp##*.}"
rootfs="$tmp/rootfs"
runc_root="/run/containerd/runc/$ns"
ctrd_pid=
recv_pid=
n=0
failed=0

stop_containerd() {
  if [ -n "$ctrd_pid" ]; then
    kill "$ctrd_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$ctrd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$ctrd_pid" 2>/dev/null
    wait "$ctrd_pid" 2>/dev/null
    ctrd_pid=
  fi
}

shims_under_tmp() {
  local p cwd
  for p in $(pgrep -f containerd-shim-cshim-v2 2>/dev/null); do
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null) || continue
    case "$cwd" in "$tmp"/*) echo "$p" ;; esac
  done
}

cleanup() {
  set +e
  trap - EXIT INT TERM
  stop_containerd
  for p in $(shims_under_tmp); do kill -9 "$p" 2>/dev/null; done
  [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null && wait "$recv_pid" 2>/dev/null
  if [ -d "$runc_root" ]; then
    for c in $(runc --root "$runc_root" list -q 2>/dev/null); do
      runc --root "$runc_root" delete --force "$c" >/dev/null 2>&1
    done
    rm -rf "$runc_root"
  fi
  grep -o " $tmp[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  shift
  for line in "$@"; do echo "#   $line"; done
}

# start_containerd <dir> <containerd> [env...]: a private daemon under <dir>
start_containerd() {
  local dir=$1 bin=$2
  shift 2
  mkdir -p "$dir"
  cat >"$dir/containerd.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.nri.v1.nri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
TOML
  env "$@" PATH="$tmp/prefix/bin:$PATH" CSHIM_CONFIG="$tmp/prefix/etc/cshim/cshim.yaml" \
    "$bin" --config "$dir/containerd.toml" >>"$dir/containerd.log" 2>&1 &
  ctrd_pid=$!
  for _ in $(seq 200); do
    if [ -S "$dir/containerd.sock" ] && ctr --address "$dir/containerd.sock" version >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$ctrd_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "# containerd did not come up:"; tail -20 "$dir/containerd.log" | sed 's/^/#   /'
  return 1
}

# spans_wait <file> <pattern> [tries of 0.1 s]: until a line matches (the shim exports on exit)
spans_wait() {
  for _ in $(seq "${3:-100}"); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

# ---- setup ----
"${CMAKE:-cmake}" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 \
  || { echo "Bail out! cmake --install failed"; cat "$tmp/install.log"; exit 1; }
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/tmp" "$rootfs/etc"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done

"$receiver" "$tmp/port" "$tmp/spans.txt" 2>"$tmp/receiver.log" &
recv_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port" 2>/dev/null)
[ -n "$port" ] || { echo "Bail out! the OTLP receiver did not start"; exit 1; }
endpoint="http://127.0.0.1:$port"
touch "$tmp/spans.txt"

# ---- 1. containerd 1.6: the shim's own traces ----
d="$tmp/c16"
start_containerd "$d" containerd OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" \
  OTEL_EXPORTER_OTLP_HEADERS="x-cshim-probe=a%20b" \
  || { echo "Bail out! containerd did not start"; exit 1; }
out=$(timeout -k 5 60 ctr --address "$d/containerd.sock" --namespace "$ns" run --rm \
  --runtime io.containerd.cshim.v2 --rootfs "$rootfs" t-hello /bin/echo hello 2>&1)
if [ "$out" = hello ]; then ok "ctr run --rm through cshim with tracing on"; else not_ok "ctr run" "$out"; fi
spans_wait "$tmp/spans.txt" "name=containerd.task.v2.Task/Delete.*container.id=t-hello" 100
create=$(grep " name=containerd.task.v2.Task/Create " "$tmp/spans.txt" | grep "container.id=t-hello" | head -1)
start=$(grep " name=containerd.task.v2.Task/Start " "$tmp/spans.txt" | grep "container.id=t-hello" | head -1)
runc_create=$(grep " name=runc create " "$tmp/spans.txt" | grep "container.id=t-hello" | head -1)
runc_start=$(grep " name=runc start " "$tmp/spans.txt" | grep "container.id=t-hello" | head -1)
stdio=$(grep " name=stdio setup " "$tmp/spans.txt" | grep "container.id=t-hello" | head -1)
names=$(sed -n 's/.* name=\([^ ]*\).*/\1/p' "$tmp/spans.txt" | sort | uniq -c | tr '\n' ',')
if [ -n "$create" ] && [ -n "$start" ] && grep -q "name=containerd.task.v2.Task/Delete " "$tmp/spans.txt"; then
  ok "a span per RPC, named service/method: $names"
else
  not_ok "a span per RPC" "spans: $names" "$(head -c 2000 "$tmp/spans.txt")"
fi
if [ -n "$create" ] && [ "$(field "$create" parent)" = - ] && [ "$(field "$create" service)" = containerd-shim-cshim-v2 ] \
  && [[ "$create" == *"rpc.grpc.status_code=0;"* ]]; then
  ok "containerd 1.6: Create is a root span of service containerd-shim-cshim-v2 with its status"
else
  not_ok "Create root span and service name" "$create"
fi
if [ -n "$runc_create" ] && [ "$(field "$runc_create" parent)" = "$(field "$create" span)" ] \
  && [ "$(field "$runc_create" trace)" = "$(field "$create" trace)" ] \
  && [ -n "$runc_start" ] && [ "$(field "$runc_start" parent)" = "$(field "$start" span)" ]; then
  ok "runc create / runc start spans are children of the Create / Start spans"
else
  not_ok "runtime-command child spans" "create: $create" "runc create: $runc_create" "start: $start" "runc start: $runc_start"
fi
if [ -n "$stdio" ] && [ "$(field "$stdio" parent)" = "$(field "$create" span)" ]; then
  ok "stdio set-up span is a child of Create"
else
  not_ok "stdio set-up span" "stdio: $stdio" "create: $create"
fi
# A live upgrade with tracing on: the tracing plugin does not hold it up, and the new image
# goes on tracing (the Kill and Delete after it are exported, in the Create's service).
c_=(timeout -k 5 60 ctr --address "$d/containerd.sock" --namespace "$ns")
"${c_[@]}" run -d --runtime io.containerd.cshim.v2 --rootfs "$rootfs" t-up /bin/sleep 1000 >/dev/null 2>&1
addr=$(cat "$d/state/io.containerd.runtime.v2.task/$ns/t-up/address" 2>/dev/null)
up=$(timeout 60 "$tmp/prefix/bin/cshimctl" -a "$addr" upgrade --binary "$tmp/prefix/bin/containerd-shim-cshim-v2" 2>&1)
up_rc=$?
"${c_[@]}" task kill -s SIGKILL t-up >/dev/null 2>&1
for _ in $(seq 50); do "${c_[@]}" task delete t-up >/dev/null 2>&1 && break; sleep 0.1; done
"${c_[@]}" container delete t-up >/dev/null 2>&1
if [ "$up_rc" = 0 ] && spans_wait "$tmp/spans.txt" "name=containerd.task.v2.Task/Delete .*container.id=t-up" 100 \
  && grep -q "name=containerd.task.v2.Task/Kill .*container.id=t-up" "$tmp/spans.txt"; then
  ok "live upgrade with tracing on; the new image exports the calls after it"
else
  not_ok "live upgrade with tracing on" "cshimctl upgrade (exit $up_rc): $up" \
    "$(grep "container.id=t-up" "$tmp/spans.txt" | sed 's/.* name=\([^ ]*\).*/\1/' | tr '\n' ' ')"
fi

if grep -qx "header x-cshim-probe=a b" "$tmp/spans.txt"; then
  ok "OTEL_EXPORTER_OTLP_HEADERS are sent (percent-decoded)"
else
  not_ok "OTEL_EXPORTER_OTLP_HEADERS are sent" "$(grep '^header' "$tmp/spans.txt" | head -3)"
fi
stop_containerd

# ---- 2. tracing off: nothing exported, nothing loaded ----
before=$(wc -l <"$tmp/spans.txt")
d="$tmp/off"
start_containerd "$d" containerd -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
  || { echo "Bail out! containerd did not start"; exit 1; }
timeout -k 5 60 ctr --address "$d/containerd.sock" --namespace "$ns" run -d \
  --runtime io.containerd.cshim.v2 --rootfs "$rootfs" t-off /bin/sleep 1000 >/dev/null 2>&1
shim=$(shims_under_tmp | head -1)
maps=
[ -n "$shim" ] && maps=$(grep -E "tracing\.so|libcurl" "/proc/$shim/maps" 2>/dev/null)
mapped_task=
[ -n "$shim" ] && mapped_task=$(grep -c "task\.so" "/proc/$shim/maps" 2>/dev/null)
timeout -k 5 30 ctr --address "$d/containerd.sock" --namespace "$ns" task kill -s SIGKILL t-off >/dev/null 2>&1
for _ in $(seq 50); do
  timeout 10 ctr --address "$d/containerd.sock" --namespace "$ns" task delete t-off >/dev/null 2>&1 && break
  sleep 0.1
done
timeout 10 ctr --address "$d/containerd.sock" --namespace "$ns" container delete t-off >/dev/null 2>&1
for _ in $(seq 50); do [ -z "$(shims_under_tmp)" ] && break; sleep 0.1; done
sleep 1.5 # longer than the shim's export interval: a span would have arrived by now
after=$(wc -l <"$tmp/spans.txt")
if [ -n "$shim" ] && [ "${mapped_task:-0}" -gt 0 ] && [ -z "$maps" ]; then
  ok "tracing off: the running shim maps neither tracing.so nor libcurl"
else
  not_ok "tracing off: nothing loaded" "shim pid '$shim', task.so mapped: '$mapped_task', found: $maps"
fi
if [ "$before" = "$after" ]; then ok "tracing off: nothing exported"; else not_ok "tracing off: exported $((after - before)) spans"; fi
stop_containerd

# ---- 3. containerd 2.x: linked traces ----
c2=
if out=$(bash "$top/scripts/fetch-containerd" containerd-2 2>&1); then
  c2=$(awk '$1 == "containerd-2" { print $2 }' <<<"$out")
fi
if [ -z "$c2" ] || [ ! -x "$c2/usr/bin/containerd" ]; then
  n=$((n + 1)); echo "ok $n - containerd 2.x: linked traces # SKIP containerd 2.x cannot be had"
else
  d="$tmp/c2"
  mkdir -p "$tmp/c2bin"
  ln -sf "$c2/usr/bin/ctr" "$tmp/c2bin/ctr"
  start_containerd "$d" "$c2/usr/bin/containerd" OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" \
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_TRACES_SAMPLER=always_on OTEL_BSP_SCHEDULE_DELAY=200 \
    || { echo "Bail out! containerd 2.x did not start"; exit 1; }
  out=$(PATH="$tmp/c2bin:$PATH" timeout -k 5 60 ctr --address "$d/containerd.sock" --namespace "$ns" run --rm \
    --runtime io.containerd.cshim.v2 --rootfs "$rootfs" t-linked /bin/echo linked 2>&1)
  [ "$out" = linked ] || echo "# ctr 2.x run: $out"
  spans_wait "$tmp/spans.txt" "name=containerd.task.v3.Task/Start.*container.id=t-linked" 100
  # containerd exports in batches of its own: wait for the spans cshim's Create and Start name
  # as parents
  for m in Create Start; do
    p=$(grep " service=containerd-shim-cshim-v2 " "$tmp/spans.txt" | grep -E " name=containerd.task.v[23].Task/$m " | grep "container.id=t-linked" | head -1)
    p=$(field "$p" parent)
    [ -n "$p" ] && [ "$p" != - ] && spans_wait "$tmp/spans.txt" " span=$p .* service=containerd " 100
  done
  stop_containerd
  screate=$(grep " service=containerd-shim-cshim-v2 " "$tmp/spans.txt" | grep -E " name=containerd.task.v[23].Task/Create " | grep "container.id=t-linked" | head -1)
  sstart=$(grep " service=containerd-shim-cshim-v2 " "$tmp/spans.txt" | grep -E " name=containerd.task.v[23].Task/Start " | grep "container.id=t-linked" | head -1)
  parent=$(field "$screate" parent)
  trace=$(field "$screate" trace)
  pspan=
  [ -n "$parent" ] && [ "$parent" != - ] && pspan=$(grep " span=$parent " "$tmp/spans.txt" | grep -v " service=containerd-shim-cshim-v2 " | head -1)
  if [ -n "$screate" ] && [ -n "$pspan" ] && [ "$(field "$pspan" trace)" = "$trace" ] \
    && [ "$(field "$sstart" trace)" != - ] && [ "$(grep "^trace=$(field "$sstart" trace) " "$tmp/spans.txt" | grep -vc " service=containerd-shim-cshim-v2 ")" -gt 0 ]; then
    ok "containerd 2.x: cshim's Create/Start spans continue containerd's traces (Create's parent: $(field "$pspan" service) $(field "$pspan" name))"
  else
    not_ok "containerd 2.x: linked traces" "cshim Create: $screate" "its parent: $pspan" "cshim Start: $sstart" \
      "services seen: $(sed -n 's/.* service=\([^ ]*\).*/\1/p' "$tmp/spans.txt" | sort | uniq -c | tr '\n' ',')" \
      "$(grep -i -E 'otlp|tracing|export' "$d/containerd.log" | tail -5)"
  fi
fi

echo "1..$n"
[ "$failed" = 0 ] || { echo "# spans received:"; sed 's/^/#   /' "$tmp/spans.txt" | tail -80; exit 1; }
exit 0
