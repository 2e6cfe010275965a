#!/bin/sh
# Run a container with cshim from ctr: the runtime type names the shim binary
# (io.containerd.cshim.v2 -> containerd-shim-cshim-v2 on containerd's PATH).
ctr image pull docker.io/library/busybox:latest
ctr run --rm --runtime io.containerd.cshim.v2 docker.io/library/busybox:latest cshim-demo \
  echo hello from cshim

