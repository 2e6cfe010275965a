#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test driver: installs this build into a temporary prefix (then moves it, to prove it is
# relocatable), builds examples/vendor-task out of tree against it with pkg-config and with the
# CMake package (both run protoc-c on the example's own greeter.proto), runs it as
# containerd-shim-acme-v2 and checks Connect, State, the vendor's own service through
# `cshimctl call`, and SIGTERM; then checks the shim refuses a module built with another plugin
# ABI. Prints TAP-style lines.
#
#   run.sh <cmake build dir> <examples/vendor-task dir> <bad_abi.c>
# env: CMAKE (default cmake), CC (default cc), CSHIM_VENDOR_FLAGS (extra compile and link flags,
#      e.g. the sanitizer flags the SDK was built with), CSHIM_IT_KEEP=1 keeps the temp dir.
set -uo pipefail

build=$(realpath "$1")
example=$(realpath "$2")
bad_abi_src=$(realpath "$3")
cmake_=${CMAKE:-cmake}
cc_=${CC:-cc}
read -r -a extra_flags <<<"${CSHIM_VENDOR_FLAGS:-}"

tmp=$(mktemp -d /tmp/cshim-vendor.XXXXXX)
shim_pid=
n=0
failed=0

cleanup() {
  set +e
  trap - EXIT INT TERM
  if [ -n "$shim_pid" ] && kill -0 "$shim_pid" 2>/dev/null; then
    kill -KILL "$shim_pid" 2>/dev/null
    wait "$shim_pid" 2>/dev/null
  fi
  if [ "${CSHIM_IT_KEEP:-0}" = 1 ]; then
    echo "# kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {
  n=$((n + 1))
  echo "ok $n - $1"
}
not_ok() {
  n=$((n + 1))
  failed=$((failed + 1))
  echo "not ok $n - $1"
  shift
  for f in "$@"; do
    [ -f "$f" ] && sed "s|^|#   |" "$f" | tail -40
  done
}
# check <description> <command...>: one TAP line; on failure shows $tmp/out.
check() {
  local what=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$what"; else not_ok "$what" "$tmp/out"; fi
}
bail() {
  echo "Bail out! $*"
  exit 1
}

prefix=$tmp/prefix
etc=$tmp/etc
sock=$tmp/s.sock
greeting="hello from acme $$"

# --- install, then move the tree: everything below must find itself from its new place -------
if ! "$cmake_" --install "$build" --prefix "$tmp/staged" >"$tmp/install.log" 2>&1; then
  not_ok "cmake --install of \`$build\` (is the build complete?)" "$tmp/install.log"
  bail "no installed cshim"
fi
mv "$tmp/staged" "$prefix"
ok "installed \`$build\` and moved the prefix"

pc=$(find "$prefix" -name cshim.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || bail "no cshim.pc under $prefix"
export PKG_CONFIG_PATH=${pc%/*}
pkgconf_() { pkg-config "$@" cshim; }
if cflags=$(pkgconf_ --cflags) && libs=$(pkgconf_ --libs) && [[ "$cflags" == *"$prefix/"* ]]; then
  ok "pkg-config --cflags --libs cshim points into the moved prefix"
else
  echo "# cflags: ${cflags:-}" && not_ok "pkg-config cshim"
  bail "unusable cshim.pc"
fi
read -r -a cflags_a <<<"$cflags"
read -r -a libs_a <<<"$libs"
host_abi=$(pkgconf_ --variable=plugin_abi_version)
plugin_dir=$(pkgconf_ --variable=plugindir)
check "the installed plugin dir holds shutdown.so and publisher.so" \
  test -f "$plugin_dir/shutdown.so" -a -f "$plugin_dir/publisher.so"

# --- build the example out of tree, three ways --------------------------------------------------
mkdir -p "$tmp/pc/gen"
module_pc=$tmp/pc/vendor_task.so
# The vendor's own .proto imports google/protobuf/empty.proto (libprotobuf-dev, /usr/include).
check "protoc-c generates the example's greeter.proto with -I\$(pkg-config --variable=protodir)" \
  protoc-c -I"$example/proto" -I"$(pkgconf_ --variable=protodir)" -I/usr/include \
  --c_out="$tmp/pc/gen" "$example/proto/acme/greeter/v1/greeter.proto"
check "pkg-config + cc builds vendor_task.so (-fPIC, hidden, --no-undefined)" \
  "$cc_" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -fvisibility=hidden \
  "${extra_flags[@]}" -shared -o "$module_pc" "$example/vendor_task.c" \
  "$tmp/pc/gen/acme/greeter/v1/greeter.pb-c.c" -I"$tmp/pc/gen" "${cflags_a[@]}" \
  "${libs_a[@]}" -Wl,--no-undefined

# The vendor's descriptors in a shared library of their own, for `cshimctl call --json
# --descriptors`: the generated greeter.pb-c.c with default visibility.
descriptors=$tmp/pc/greeter-descriptors.so
check "cc builds the greeter's protobuf-c descriptors into a shared library" \
  "$cc_" -std=gnu11 -fPIC "${extra_flags[@]}" -shared -o "$descriptors" \
  "$tmp/pc/gen/acme/greeter/v1/greeter.pb-c.c" -I"$tmp/pc/gen" "${cflags_a[@]}" "${libs_a[@]}"

check "find_package(cshim) with CMAKE_PREFIX_PATH configures the example" \
  "$cmake_" -S "$example" -B "$tmp/build-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="${CSHIM_VENDOR_FLAGS:-}" -DCMAKE_MODULE_LINKER_FLAGS="${CSHIM_VENDOR_FLAGS:-}" \
  -DCMAKE_C_COMPILER="$cc_"
check "... and builds it" "$cmake_" --build "$tmp/build-cmake"
module_cmake=$tmp/build-cmake/vendor_task.so

check "the example's pkg-config variant configures with PKG_CONFIG_PATH" \
  "$cmake_" -S "$example" -B "$tmp/build-pkgconfig" -DVENDOR_TASK_USE_PKGCONFIG=ON \
  -DCMAKE_C_FLAGS="${CSHIM_VENDOR_FLAGS:-}" -DCMAKE_MODULE_LINKER_FLAGS="${CSHIM_VENDOR_FLAGS:-}" \
  -DCMAKE_C_COMPILER="$cc_"
check "... and builds it" "$cmake_" --build "$tmp/build-pkgconfig"

for m in "$module_pc" "$module_cmake" "$tmp/build-pkgconfig/vendor_task.so"; do
  exported=$(nm -D --defined-only "$m" 2>/dev/null | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort | tr '\n' ' ')
  if [ "$exported" = "cshim_plugin_entry " ]; then
    ok "${m#"$tmp"/} exports only cshim_plugin_entry"
  else
    echo "# exported: $exported"
    not_ok "${m#"$tmp"/} exports only cshim_plugin_entry"
  fi
done

# --- the vendor's shim: containerd-shim-acme-v2 reads <etc>/acme.yaml --------------------------
ln -s containerd-shim-cshim-v2 "$prefix/bin/containerd-shim-acme-v2"
mkdir -p "$etc" "$tmp/bundle"

# write_config <yaml> <module>: the example's acme.yaml with its module path and greeting replaced
write_config() {
  sed -e "s|/usr/local/lib/acme/vendor_task.so|$2|" -e "s|greeting: .*|greeting: $greeting|" \
    "$example/acme.yaml" >"$1"
  grep -qF -- "- $2" "$1" && grep -qF "greeting: $greeting" "$1"
}

start_shim() {
  rm -f "$sock"
  (cd "$tmp/bundle" && exec env -u CSHIM_CONFIG CSHIM_ETC_DIR="$etc" \
    "$prefix/bin/containerd-shim-acme-v2" -namespace ns -id x -address /nonexistent \
    -socket "$sock") 2>"$tmp/shim.log" &
  shim_pid=$!
  for _ in $(seq 100); do
    [ -S "$sock" ] && return 0
    kill -0 "$shim_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

ctl() { "$prefix/bin/cshimctl" --socket "$sock" --timeout 10s "$@"; }

# stop_shim: SIGTERM, then the exit status of the shim (124 if it did not exit within 10 s)
stop_shim() {
  local rc=0
  kill -TERM "$shim_pid"
  for _ in $(seq 100); do
    kill -0 "$shim_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$shim_pid" 2>/dev/null; then
    kill -KILL "$shim_pid"
    rc=124
    wait "$shim_pid" 2>/dev/null
  else
    wait "$shim_pid" || rc=$?
  fi
  shim_pid=
  return $rc
}

# varint <n>: the protobuf varint of n, as \xHH escapes for printf.
varint() {
  local v=$1 out=
  while [ "$v" -ge 128 ]; do
    out+=$(printf '\\x%02x' $(((v & 127) | 128)))
    v=$((v >> 7))
  done
  out+=$(printf '\\x%02x' "$v")
  printf '%s' "$out"
}

# The example's acme.greeter.v1.Greeter, with `cshimctl call` (binary protobuf in, binary or hex
# out): Hello{name} -> HelloResponse{text = "<greeting>, <name>", shim_pid}.
call_vendor_service() {
  local label=$1 text out rc
  text="$greeting, vendor"
  printf '\x0a\x06vendor' >"$tmp/hello.bin"
  # HelloResponse: field 1 (text, length-delimited), field 2 (shim_pid, varint).
  printf "\\x0a$(varint ${#text})%s\\x10$(varint "$shim_pid")" "$text" >"$tmp/expected.bin"
  if ctl call acme.greeter.v1.Greeter Hello --input "$tmp/hello.bin" >"$tmp/got.bin" 2>"$tmp/out" &&
    cmp -s "$tmp/expected.bin" "$tmp/got.bin"; then
    ok "$label: cshimctl call acme.greeter.v1.Greeter Hello --input FILE prints the response bytes"
  else
    echo "# expected $(od -An -tx1 "$tmp/expected.bin" | tr -d '\n'), got $(od -An -tx1 "$tmp/got.bin" | tr -d '\n')"
    not_ok "$label: cshimctl call ... Hello --input FILE prints the response bytes" "$tmp/out"
  fi
  out=$(ctl call acme.greeter.v1.Greeter Hello --hex <"$tmp/hello.bin" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 0 ] && [ "$out" = "$(od -An -v -tx1 "$tmp/expected.bin" | tr -d ' \n')" ]; then
    ok "$label: ... with the request on stdin and --hex"
  else
    echo "# cshimctl call --hex (exit $rc): $out"
    not_ok "$label: ... with the request on stdin and --hex"
  fi
  out=$(ctl call acme.greeter.v1.Greeter Ping --hex </dev/null 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
    ok "$label: ... Ping with an empty body answers an empty message"
  else
    echo "# cshimctl call Ping (exit $rc): $out"
    not_ok "$label: ... Ping with an empty body answers an empty message"
  fi
  out=$(ctl call acme.greeter.v1.Greeter Hello --input "$tmp/no-such-file" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 1 ] && [[ "$out" == *"open request body \`$tmp/no-such-file\`: No such file"* ]]; then
    ok "$label: ... a missing --input file is named, exit 1"
  else
    echo "# cshimctl call --input missing (exit $rc): $out"
    not_ok "$label: ... a missing --input file is named, exit 1"
  fi
  out=$(ctl call acme.greeter.v1.Greeter </dev/null 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 2 ] && [[ "$out" == *"call: expected SERVICE METHOD"* ]]; then
    ok "$label: ... without a method it is a usage error, exit 2"
  else
    echo "# cshimctl call without METHOD (exit $rc): $out"
    not_ok "$label: ... without a method it is a usage error, exit 2"
  fi
  # --json: the body and the answer as JSON, through the vendor's descriptors.
  out=$(echo '{"name": "vendor"}' |
    ctl call acme.greeter.v1.Greeter Hello --json --descriptors "$descriptors" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 0 ] &&
    [ "$out" = "$(printf '{\n  "text": "%s",\n  "shim_pid": %s\n}' "$text" "$shim_pid")" ]; then
    ok "$label: ... --json --descriptors LIB: a JSON request, the answer as JSON"
  else
    echo "# cshimctl call --json (exit $rc): $out"
    not_ok "$label: ... --json --descriptors LIB: a JSON request, the answer as JSON"
  fi
  out=$(echo '{"nmae": "x"}' |
    ctl call acme.greeter.v1.Greeter Hello --json --descriptors "$descriptors" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 1 ] && [[ "$out" == *"\`nmae\`: no such field in acme.greeter.v1.HelloRequest"* ]]; then
    ok "$label: ... --json names a field the message does not have, exit 1"
  else
    echo "# cshimctl call --json nmae (exit $rc): $out"
    not_ok "$label: ... --json names a field the message does not have, exit 1"
  fi
  out=$(ctl call acme.greeter.v1.Greeter Hello --json </dev/null 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 1 ] && [[ "$out" == *"give a vendor's with --descriptors LIB.so"* ]]; then
    ok "$label: ... --json without the vendor's descriptors says how to give them, exit 1"
  else
    echo "# cshimctl call --json without descriptors (exit $rc): $out"
    not_ok "$label: ... --json without the vendor's descriptors says how to give them, exit 1"
  fi
  # The task service's descriptors come with cshimctl.
  out=$(echo '{"id": "x"}' | ctl call containerd.task.v2.Task Connect --json 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 0 ] && [[ "$out" == *"\"shim_pid\": $shim_pid,"* ]] &&
    [[ "$out" == *"\"version\": \"$greeting\""* ]]; then
    ok "$label: ... --json with the task service's own descriptors (Connect)"
  else
    echo "# cshimctl call Task Connect --json (exit $rc): $out"
    not_ok "$label: ... --json with the task service's own descriptors (Connect)"
  fi
  out=$(ctl call acme.greeter.v1.Greeter Goodbye </dev/null 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 1 ] && [[ "$out" == *"call acme.greeter.v1.Greeter/Goodbye: RPC failed: Unimplemented"* ]]; then
    ok "$label: ... an unknown method is Unimplemented, exit 1"
  else
    echo "# cshimctl call Goodbye (exit $rc): $out"
    not_ok "$label: ... an unknown method is Unimplemented, exit 1"
  fi
}

run_vendor_shim() { # <module> <label>
  local module=$1 label=$2 out rc
  if ! write_config "$etc/acme.yaml" "$module"; then
    not_ok "$label: write acme.yaml from the example" "$etc/acme.yaml"
    return
  fi
  if ! start_shim; then
    not_ok "$label: containerd-shim-acme-v2 serves on its socket" "$tmp/shim.log"
    stop_shim
    return
  fi
  ok "$label: containerd-shim-acme-v2 serves on its socket"
  # the socket is listening before the shim logs its "serving on" line: give the log 5 s
  for _ in $(seq 50); do
    grep -qF "(config \`$etc/acme.yaml\`)" "$tmp/shim.log" && break
    sleep 0.1
  done
  if grep -qF "(config \`$etc/acme.yaml\`)" "$tmp/shim.log" &&
    grep -qF "greeting \`$greeting\`" "$tmp/shim.log"; then
    ok "$label: the binary name selected <etc>/acme.yaml and the vendor plugin read its section"
  else
    not_ok "$label: the binary name selected <etc>/acme.yaml" "$tmp/shim.log"
  fi

  out=$(ctl connect x 2>&1)
  if [ "$out" = "shim pid $shim_pid, task pid 0, version $greeting" ]; then
    ok "$label: Connect returns the shim's pid and the greeting as version"
  else
    echo "# cshimctl connect: $out"
    not_ok "$label: Connect returns the shim's pid and the greeting as version"
  fi

  out=$(ctl state no-such-task 2>&1) && rc=0 || rc=$?
  if [ "$rc" -ne 0 ] && [[ "$out" == *"NotFound: container \`no-such-task\` not found"* ]]; then
    ok "$label: State of an unknown id is NotFound"
  else
    echo "# cshimctl state (exit $rc): $out"
    not_ok "$label: State of an unknown id is NotFound"
  fi

  out=$(ctl state x 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 0 ] && [[ "$out" == *"bundle:      $tmp/bundle"* ]]; then
    ok "$label: State of the shim's own id answers with its bundle"
  else
    echo "# cshimctl state x (exit $rc): $out"
    not_ok "$label: State of the shim's own id answers with its bundle"
  fi

  call_vendor_service "$label"

  out=$(ctl start x 2>&1) && rc=0 || rc=$?
  if [ "$rc" -ne 0 ] && [[ "$out" == *"Unimplemented"* ]]; then
    ok "$label: methods the plugin does not handle are Unimplemented"
  else
    echo "# cshimctl start (exit $rc): $out"
    not_ok "$label: methods the plugin does not handle are Unimplemented"
  fi

  stop_shim && rc=0 || rc=$?
  if [ "$rc" -eq 0 ] && [ ! -e "$sock" ]; then
    ok "$label: SIGTERM: the shim exits 0 and removes its socket"
  else
    echo "# exit status $rc; socket $([ -e "$sock" ] && echo left behind || echo removed)"
    not_ok "$label: SIGTERM: the shim exits 0 and removes its socket" "$tmp/shim.log"
  fi
}

if [ -f "$module_cmake" ]; then
  run_vendor_shim "$module_cmake" "find_package build"
fi
if [ -f "$module_pc" ]; then
  run_vendor_shim "$module_pc" "pkg-config build"
fi

# --- a module built for another plugin ABI is refused, by file name ---------------------------
bad=$tmp/bad/bad_abi.so
mkdir -p "$tmp/bad"
check "bad_abi.so (descriptor abi_version 999) builds against the installed SDK" \
  "$cc_" -std=gnu11 -Wall -fPIC -fvisibility=hidden "${extra_flags[@]}" -shared -o "$bad" \
  "$bad_abi_src" "${cflags_a[@]}" "${libs_a[@]}" -Wl,--no-undefined
write_config "$etc/acme.yaml" "$bad"
rc=0
(cd "$tmp/bundle" && exec timeout -k 5 30 env -u CSHIM_CONFIG CSHIM_ETC_DIR="$etc" \
  "$prefix/bin/containerd-shim-acme-v2" -namespace ns -id x -address /nonexistent \
  -socket "$sock") >"$tmp/bad.log" 2>&1 || rc=$?
expected="plugin \`$bad\`: ABI version 999, host supports $host_abi"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF "$expected" "$tmp/bad.log" && [ ! -e "$sock" ]; then
  ok "the shim refuses bad_abi.so: exit $rc, \"$expected\", no socket left"
else
  echo "# exit status $rc; expected a failure naming: $expected"
  not_ok "the shim refuses a module with another ABI version" "$tmp/bad.log"
fi

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
