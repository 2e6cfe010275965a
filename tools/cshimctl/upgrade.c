// SPDX-License-Identifier: Apache-2.0
// cshimctl upgrade: ask a cshim shim to re-execute itself from a new binary, keeping its pid,
// connections and containers (docs/live-upgrade.md).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "ctl.h"
#include "cshim/upgrade/v1/upgrade.pb-c.h"

#define UPGRADE_SERVICE "cshim.upgrade.v1.Upgrade"

int
ctl_cmd_upgrade(const ctl_opts_t *opts)
{
  Cshim__Upgrade__V1__UpgradeRequest req = CSHIM__UPGRADE__V1__UPGRADE_REQUEST__INIT;
  Cshim__Upgrade__V1__UpgradeResponse *resp = NULL;
  ctl_opts_t call_opts = *opts;
  ctl_client_t c;
  cshim_error_t err = NULL;
  int ret;

  if (opts->address == NULL)
    return ctl_usage_error("upgrade: --address of the shim is required");
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
