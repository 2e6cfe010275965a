# SPDX-License-Identifier: Apache-2.0
# Checks sourced by run.sh (after checks-task-control.sh, whose Go client they use) for what
# Kubernetes setups meet: a config mistake reaches ctr's own output (file:line:col), CRI's runtime
# options (config_body) are read and not dropped, and an image of 128 layers (built here,
# imported with ctr, no network) runs.

# k8s_no_shim_for <id>...: no shim serves from those containers' bundles (other checks' shims
# are not ours to count)
k8s_no_shim_for() {
  local id p i left
  for i in $(seq 50); do
    left=
    for id in "$@"; do
      for p in $(shims_under_tmp); do
        [ "$(readlink "/proc/$p/cwd")" = "$bundles/$id" ] && left+=" $id:$p"
      done
    done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  echo "shims left:$left"
  return 1
}

# k8s_expect_start_failure <yaml text> <message>: ctr run with that shim config fails, and ctr
# itself prints the message; nothing is left behind
k8s_expect_start_failure() {
  local id=it-badcfg out rc
  printf '%s' "$1" >"$tmp/bad-config.yaml"
  out=$(run_ --runtime-config-path "$tmp/bad-config.yaml" --rm "$id" /bin/true 2>&1)
  rc=$?
  ctr_ container delete "$id" >/dev/null 2>&1
  [ "$rc" != 0 ] || { echo "ctr run succeeded with a bad config"; return 1; }
  echo "ctr said: $out"
  [[ "$out" == *"$2"* ]] || { echo "want: $2"; return 1; }
  [ -z "$(ls "$bundles" 2>/dev/null | grep -x "$id")" ] || { echo "bundle left"; return 1; }
}

k8s_check_config_mistakes_reach_ctr() {
  local bad=0
  k8s_expect_start_failure $'version: 1\nmodlues: [task.so]\n' \
    "$tmp/bad-config.yaml:2:1: unknown key \`modlues\`" || bad=1
  k8s_expect_start_failure $'version: 1\nmodules: [shutdown.so, publisher.so, task.so, nosuch.so]\n' \
    "nosuch.so" || bad=1
  k8s_expect_start_failure $'version: 1\ndisabled_plugins:\n  - io.containerd.ttrpc.v1.task\n' \
    "$tmp/bad-config.yaml:3:5: plugin \`io.containerd.ttrpc.v1.task\` is disabled" || bad=1
  k8s_expect_start_failure $'version: 1\nplugins:\n  io.containerd.ttrpc.v1.tsak: {}\n' \
    "config for unknown plugin \`io.containerd.ttrpc.v1.tsak\`" || bad=1
  # found by the task plugin as it initialises in the daemon, which reports it to start
  k8s_expect_start_failure $'version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtiem: crun\n' \
    "$tmp/bad-config.yaml:4:14: unknown key \`runtiem\`" || bad=1
  k8s_no_shim_for it-badcfg || bad=1
  return $bad
}

# k8s_run_with_toml <id> <toml text>: the Go client runs `sleep 1000` in a container whose
# runtime options are that RuntimeClass options table, as containerd 1.7's CRI plugin sends it
k8s_run_with_toml() {
  printf '%s' "$2" >"$tmp/options-$1.toml"
  tc_client_ -id "$1" -rootfs "$rootfs" -fifo-dir "$tmp/fifo" -options-toml "$tmp/options-$1.toml" run 2>&1
}

k8s_check_config_body() {
  local out rt bad=0 root="$tmp/body-root"
  tc_build_client || return 1
  rt=$(command -v "$tc_oci_runtime")
  mkdir -p "$tmp/fifo"

  # every option given is used: the runtime binary and its root come from the options
  out=$(k8s_run_with_toml it-body "BinaryName = \"$rt\"
Root = \"$root\"
NoNewKeyring = true
CshimConfig = '''
version: 1
log_level: debug
'''
") || { echo "run with config_body failed: $out"; bad=1; }
  if [ $bad = 0 ]; then
    [ "$(cat "$bundles/it-body/runtime" 2>/dev/null)" = "$rt" ] ||
      { echo "bundle runtime: $(cat "$bundles/it-body/runtime" 2>/dev/null)"; bad=1; }
    [ -d "$root/$ns/it-body" ] || { echo "no runtime state under the options' Root $root"; bad=1; }
    grep -q '^log_level: debug' "$bundles/it-body/cshim-config.yaml" 2>/dev/null ||
      { echo "inline CshimConfig not kept in the bundle"; bad=1; }
  fi
  remove_task it-body

  # a runtime that does not exist is not silently replaced by runc
  out=$(k8s_run_with_toml it-body2 'BinaryName = "/nonexistent/runtime"
')
  [[ "$out" == *"/nonexistent/runtime"* ]] || { echo "BinaryName ignored? client said: $out"; bad=1; }
  remove_task it-body2

  # an option cshim does not know is an error the client sees, with its place
  out=$(k8s_run_with_toml it-body3 'SystemdCgroup = false
BinaryNam = "/usr/bin/crun"
')
  [[ "$out" == *'config_body:1:1: unknown runtime option `BinaryNam`'* ]] ||
    { echo "unknown option: client said: $out"; bad=1; }
  remove_task it-body3
  k8s_no_shim_for it-body it-body2 it-body3 || bad=1
  return $bad
}

# k8s_make_image <dir> <layers> <name> <out.tar>: an OCI image archive whose first layer is the
# busybox rootfs and whose every other layer i adds /layers/l<i> and rewrites /layers/top
k8s_make_image() {
  local d=$1 n=$2 name=$3 out=$4 blobs="$1/oci/blobs/sha256" i l digest size
  local diffs="" layers="" arch config manifest
  arch=$(dpkg --print-architecture)
  mkdir -p "$blobs"
  for i in $(seq 1 "$n"); do
    l="$d/layer$i"
    mkdir -p "$l"
    if [ "$i" = 1 ]; then
      cp -a "$rootfs/." "$l/"
    else
      mkdir -p "$l/layers"
      echo "$i" >"$l/layers/l$i"
      echo "$i" >"$l/layers/top"
    fi
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$l" -cf "$d/layer.tar" . || return 1
    rm -rf "$l"
    digest=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
    size=$(stat -c %s "$d/layer.tar")
    mv "$d/layer.tar" "$blobs/$digest"
    diffs+="${diffs:+,}\"sha256:$digest\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$digest\",\"size\":$size}"
  done
  printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$arch" "$diffs" >"$d/blob"
  digest=$(sha256sum "$d/blob" | cut -d' ' -f1)
  config="{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$digest\",\"size\":$(stat -c %s "$d/blob")}"
  mv "$d/blob" "$blobs/$digest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
    "$config" "$layers" >"$d/blob"
  digest=$(sha256sum "$d/blob" | cut -d' ' -f1)
  manifest="{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$digest\",\"size\":$(stat -c %s "$d/blob")"
  mv "$d/blob" "$blobs/$digest"
  printf '{"schemaVersion":2,"manifests":[%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest" "$name" >"$d/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci/oci-layout"
  tar -C "$d/oci" -cf "$out" . || return 1
  rm -rf "$d/oci"
}

k8s_check_deep_image() {
  local name=cshim.test/deep:latest out bad=0 layers=128
  mkdir -p "$tmp/deep"
  k8s_make_image "$tmp/deep" "$layers" "$name" "$tmp/deep.tar" || { echo "building the image failed"; return 1; }
  out=$(ctr_ image import "$tmp/deep.tar" 2>&1) || { echo "ctr image import: $out"; return 1; }
  out=$(ctr_ run --rm --runtime "$runtime" "$name" it-deep /bin/sh -c 'ls /layers | wc -l; cat /layers/top; cat /layers/l2' 2>&1) ||
    { echo "ctr run of a $layers-layer image failed: $out"; bad=1; }
  [ "$bad" = 1 ] || [ "$(echo $out)" = "$layers $layers 2" ] || { echo "the container saw: $out"; bad=1; }
  ctr_ container delete it-deep >/dev/null 2>&1
  ctr_ image rm "$name" >/dev/null 2>&1
  rm -rf "$tmp/deep" "$tmp/deep.tar"
  if grep -q " $bundles/it-deep" /proc/self/mounts; then echo "rootfs mount left"; bad=1; fi
  return $bad
}

# cshim's config and its reading of runtimeoptions.v1.Options: nothing to compare in the runc-v2
# baseline (containerd's runc shim has no config file and takes only containerd.runc.v1.Options)
k8s_cshim_only() {
  if [ "$runtime" != io.containerd.cshim.v2 ]; then
    echo "# cshim's own: not checked with $runtime"
    return 0
  fi
  "$@"
}
check "a config mistake reaches ctr with file:line:col" k8s_cshim_only k8s_check_config_mistakes_reach_ctr
check "CRI runtime options (config_body) are read, an unknown one refused" k8s_cshim_only k8s_check_config_body
check "an image of 128 layers runs" k8s_check_deep_image
