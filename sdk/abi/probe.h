// SPDX-License-Identifier: Apache-2.0
// The ABI probe's one type: a pointer to each public type that no exported SDK function names,
// so that abidw records them. In a header because abidw --headers-dir keeps only types defined
// in headers (sdk/include and this directory).
#ifndef CSHIM_ABI_PROBE_H
#define CSHIM_ABI_PROBE_H

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/file.h>
#include <cshim/frame.h>
#include <cshim/host.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/reaper.h>
#include <cshim/runc_options.h>
#include <cshim/runtime.h>
#include <cshim/shutdown.h>
#include <cshim/spawn.h>
#include <cshim/struct_size.h>
#include <cshim/trace.h>
#include <cshim/ttrpc.h>
#include <cshim/ttrpc_client.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>
#include <cshim/version.h>

/* One pointer to each public type that no exported SDK function names. */
struct cshim_abi_probe_types
{
  const cshim_plugin_t *plugin;
  const cshim_init_ctx_t *init_ctx;
  cshim_plugin_entry_fn entry;
  cshim_host_t *host;
  cshim_host_plugin_info_t *host_plugin_info;
  cshim_host_log_stats_t *host_log_stats;
  cshim_publisher_t *publisher;
  cshim_publisher_stats_t *publisher_stats;
  cshim_shutdown_t *shutdown;
  cshim_shutdown_done_t *shutdown_done;
  cshim_reaper_t *reaper;
  cshim_ttrpc_call_t *ttrpc_call;
  cshim_ttrpc_server_t *ttrpc_server;
  const cshim_ttrpc_service_t *ttrpc_service;
  const cshim_ttrpc_interceptor_t *ttrpc_interceptor;
  cshim_ttrpc_stats_t *ttrpc_stats;
  cshim_frame_t *frame;
  enum cshim_grpc_code grpc_code;
  enum cshim_log_level log_level;
  enum cshim_frame_type frame_type;
  enum cshim_frame_flag frame_flag;
  cshim_tracer_t *tracer;
  cshim_tracer_stats_t *tracer_stats;
};

#endif
