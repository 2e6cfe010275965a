// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness: the runtime-options readers. The first input byte picks one:
//   even: the bytes are start's stdin (host_options_decode: an options Any or BootstrapParams);
//   odd:  the bytes are a bundle's options.json (cshim_runc_options_read); what it accepts must
//         survive cshim_runc_options_write and read back unchanged.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/runc_options.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char bundle[64];
static char bundle2[64];
static char file_path[96];

static void
remove_bundles(void)
{
  char p[128];

  unlink(file_path);
  rmdir(bundle);
  snprintf(p, sizeof(p), "%s/%s", bundle2, CSHIM_RUNC_OPTIONS_FILE);
  unlink(p);
  rmdir(bundle2);
}

static void
setup_once(void)
{
  strcpy(bundle, "/tmp/cshim-fuzz-opts-XXXXXX");
  strcpy(bundle2, "/tmp/cshim-fuzz-opts-XXXXXX");
  if (!mkdtemp(bundle) || !mkdtemp(bundle2))
    abort();
  snprintf(file_path, sizeof(file_path), "%s/%s", bundle, CSHIM_RUNC_OPTIONS_FILE);
  atexit(remove_bundles);
}

static int
same_string(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void
check_round_trip(const cshim_runc_options_t *o)
{
  cshim_runc_options_t back;
  cshim_error_t err = NULL;

  if (cshim_runc_options_write(bundle2, o, &err) < 0) {
    fprintf(stderr, "write: %s\n", err->msg);
    abort();
  }
  if (cshim_runc_options_read(bundle2, &back, &err) != 1) {
    fprintf(stderr, "read back: %s\n", err ? err->msg : "missing");
    abort();
  }
  /* Empty strings are "unset" on the wire (proto3 zero values are left out). */
#define STR(f) (o->f && o->f[0] ? o->f : NULL)
  if (back.no_pivot_root != o->no_pivot_root || back.no_new_keyring != o->no_new_keyring ||
      back.systemd_cgroup != o->systemd_cgroup || back.io_uid != o->io_uid ||
      back.io_gid != o->io_gid || !same_string(back.binary_name, STR(binary_name)) ||
      !same_string(back.root, STR(root)) || !same_string(back.shim_cgroup, STR(shim_cgroup)) ||
      !same_string(back.criu_image_path, STR(criu_image_path)) ||
      !same_string(back.criu_work_path, STR(criu_work_path)) ||
      !same_string(back.criu_path, STR(criu_path))) {
    fprintf(stderr, "options.json does not read back as written\n");
    abort();
  }
#undef STR
  cshim_runc_options_clear(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cshim_error_t err = NULL;

  if (size == 0)
    return 0;
  if (!bundle[0])
    setup_once();
  if (data[0] % 2 == 0) {
    host_start_options_t o;
    memset(&o, 0, sizeof(o));
    if (host_options_decode(data + 1, size - 1, "id", "ns", &o, &err) < 0)
      cshim_error_release(&err);
    host_options_clear(&o);
  } else {
    cshim_runc_options_t o;
    FILE *f = fopen(file_path, "we");
    int r;

    if (!f || fwrite(data + 1, 1, size - 1, f) != size - 1 || fclose(f) != 0)
      abort();
    r = cshim_runc_options_read(bundle, &o, &err);
    if (r < 0)
      cshim_error_release(&err);
    else if (r == 1)
      check_round_trip(&o);
    cshim_runc_options_clear(&o);
  }
  return 0;
}
