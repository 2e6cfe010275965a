// SPDX-License-Identifier: Apache-2.0
// cshimctl upgrade: ask a cshim shim to re-execute itself from a new binary, keeping its pid,
// connections and containers (docs/live-upgrade.md).
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "ctl.h"
#include "cshim/upgrade/v1/upgrade.pb-c.h"

#define UPGRADE_SERVICE "cshim.upgrade.v1.Upgrade"

static int upgrade_all(const ctl_opts_t *opts);

int
ctl_cmd_upgrade(const ctl_opts_t *opts)
{
  Cshim__Upgrade__V1__UpgradeRequest req = CSHIM__UPGRADE__V1__UPGRADE_REQUEST__INIT;
  Cshim__Upgrade__V1__UpgradeResponse *resp = NULL;
  ctl_opts_t call_opts = *opts;
  ctl_client_t c;
  cshim_error_t err = NULL;
  int ret;

  if (opts->all)
    return upgrade_all(opts);
  if (opts->address == NULL)
    return ctl_usage_error("upgrade: --address of the shim is required (or --all)");
  if (opts->n_args > 0)
    return ctl_usage_error("upgrade: unexpected argument `%s`", opts->args[0]);
  req.binary = (char *)(opts->binary ? opts->binary : "");
  /* --timeout bounds the wait for a quiet point; the call itself may take that long plus the
     restart. */
  req.timeout_ms = opts->timeout_set ? opts->timeout_ms : 0;
  call_opts.task_service = UPGRADE_SERVICE;
  call_opts.timeout_ms = (opts->timeout_set ? opts->timeout_ms : 5000) + 30000;

  if (ctl_client_open(&c, &call_opts, &err) < 0)
    return ctl_fail(&err);
  ret = ctl_client_call(&c, "Upgrade", &req.base, &cshim__upgrade__v1__upgrade_response__descriptor,
                        (ProtobufCMessage **)&resp, &err);
  ctl_client_close(&c);
  if (ret < 0)
    return ctl_fail(&err);
  if (opts->json)
    printf("{\"pid\":%u,\"old_version\":\"%s\",\"new_version\":\"%s\",\"binary\":\"%s\","
           "\"pause_ns\":%llu,\"state_bytes\":%llu,\"fds\":%u,\"generation\":%llu}\n",
           resp->pid, resp->old_version, resp->new_version, resp->binary,
           (unsigned long long)resp->pause_ns, (unsigned long long)resp->state_bytes, resp->fds,
           (unsigned long long)resp->generation);
  else
    printf("pid %u: %s -> %s (%s), paused %.1f ms, state %llu bytes, %u descriptors\n", resp->pid,
           resp->old_version, resp->new_version, resp->binary, (double)resp->pause_ns / 1e6,
           (unsigned long long)resp->state_bytes, resp->fds);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return 0;
}

/* ---- --all: every shim containerd knows of ---- */

#define MAX_SHIMS 4096

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Addresses in <state>/io.containerd.runtime.v2.task/<ns>/<id>/address, sorted, each once (a
   group of containers shares one shim). */
static size_t
find_shims(const char *state, char **out, size_t max)
{
  cshim_autofree char *root = NULL;
  DIR *nsd, *idd;
  struct dirent *ns, *id;
  size_t n = 0, kept = 0;

  cshim_xasprintf(&root, "%s/io.containerd.runtime.v2.task", state);
  nsd = opendir(root);
  if (nsd == NULL)
    return 0;
  while ((ns = readdir(nsd)) != NULL && n < max) {
    cshim_autofree char *nsdir = NULL;
    if (ns->d_name[0] == '.')
      continue;
    cshim_xasprintf(&nsdir, "%s/%s", root, ns->d_name);
    idd = opendir(nsdir);
    if (idd == NULL)
      continue;
    while ((id = readdir(idd)) != NULL && n < max) {
      cshim_autofree char *path = NULL;
      char buf[256];
      FILE *f;
      size_t len;
      if (id->d_name[0] == '.')
        continue;
      cshim_xasprintf(&path, "%s/%s/address", nsdir, id->d_name);
      f = fopen(path, "re");
      if (f == NULL)
        continue;
      len = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[len] = '\0';
      buf[strcspn(buf, "\r\n")] = '\0';
      if (buf[0])
        out[n++] = cshim_xstrdup(buf);
    }
    closedir(idd);
  }
  closedir(nsd);
  qsort(out, n, sizeof *out, cmp_str);
  for (size_t i = 0; i < n; i++) {
    if (kept > 0 && strcmp(out[kept - 1], out[i]) == 0) {
      free(out[i]);
      continue;
    }
    out[kept++] = out[i];
  }
  return kept;
}

static int
upgrade_all(const ctl_opts_t *opts)
{
  const char *state = opts->state_dir ? opts->state_dir : "/run/containerd";
  cshim_autofree char **addrs = cshim_xmalloc0(MAX_SHIMS * sizeof *addrs);
  size_t n = find_shims(state, addrs, MAX_SHIMS), ok = 0, failed = 0, other = 0;

  for (size_t i = 0; i < n; i++) {
    Cshim__Upgrade__V1__UpgradeRequest req = CSHIM__UPGRADE__V1__UPGRADE_REQUEST__INIT;
    Cshim__Upgrade__V1__UpgradeResponse *resp = NULL;
    ctl_opts_t call_opts = *opts;
    cshim_error_t err = NULL;
    ctl_client_t c;
    int ret;

    req.binary = (char *)(opts->binary ? opts->binary : "");
    req.timeout_ms = opts->timeout_set ? opts->timeout_ms : 0;
    call_opts.address = addrs[i];
    call_opts.task_service = UPGRADE_SERVICE;
    call_opts.timeout_ms = (opts->timeout_set ? opts->timeout_ms : 5000) + 30000;
    ret = ctl_client_open(&c, &call_opts, &err);
    if (ret == 0) {
      ret = ctl_client_call(&c, "Upgrade", &req.base,
                            &cshim__upgrade__v1__upgrade_response__descriptor,
                            (ProtobufCMessage **)&resp, &err);
      ctl_client_close(&c);
    }
    if (ret == 0) {
      printf("%s pid %u: %s -> %s, paused %.1f ms: upgraded\n", addrs[i], resp->pid,
             resp->old_version, resp->new_version, (double)resp->pause_ns / 1e6);
      protobuf_c_message_free_unpacked(&resp->base, NULL);
      ok++;
    } else if (cshim_error_grpc_code(err) == CSHIM_GRPC_UNIMPLEMENTED) {
      printf("%s: not a cshim shim: skipped\n", addrs[i]);
      other++;
    } else {
      printf("%s: failed: %s\n", addrs[i], err->msg);
      failed++;
    }
    cshim_error_release(&err);
    free(addrs[i]);
    fflush(stdout);
  }
  printf("%zu upgraded, %zu failed, %zu other shims skipped\n", ok, failed, other);
  return failed > 0 ? 1 : 0;
}
