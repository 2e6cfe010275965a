// SPDX-License-Identifier: Apache-2.0
// cshimctl's shared pieces: parsed options, the synchronous ttrpc call, output helpers.
#ifndef CSHIMCTL_CTL_H
#define CSHIMCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>
#include <jansson.h>

#include <cshim/error.h>
#include <cshim/ttrpc_client.h>

#include "google/protobuf/timestamp.pb-c.h"

#define CTL_MAX_LIST 64

/* Everything the command line may say; each command reads what it needs. */
typedef struct ctl_opts_s
{
  const char *command;
  char **args; /* positional arguments after the command */
  size_t n_args;

  const char *address; /* task/debug commands: the socket; launch/teardown: containerd's gRPC */
  const char *namespace_;
  const char *task_service; /* containerd.task.v2.Task or .v3 */
  uint64_t timeout_ms;      /* per call; 0 = none */
  bool timeout_set;
  bool json;

  /* launch / teardown */
  const char *runtime;
  const char *binary;
  const char *id;
  const char *bundle;
  const char *ttrpc_address;
  const char *publish_binary;
  const char *options_file;
  const char *log_file; /* where launch's relay copies the shim's log FIFO */
  bool debug;

  /* task commands */
  const char *exec_id;
  const char *stdin_;
  const char *stdout_;
  const char *stderr_;
  bool terminal;
  const char *signal;
  bool all;
  bool now;
  const char *mounts[CTL_MAX_LIST]; /* TYPE:SOURCE[:OPTION,OPTION] */
  size_t n_mounts;
  const char *runtime_binary; /* containerd.runc.v1.Options binary_name */
  const char *runtime_root;   /* containerd.runc.v1.Options root */
  const char *cwd;
  const char *env[CTL_MAX_LIST];
  size_t n_env;
  unsigned uid, gid;

  /* upgrade --all */
  const char *state_dir; /* containerd's state directory */

  /* call */
  const char *input;       /* request body file; "-" or NULL = stdin */
  bool hex;                /* print the response in hex */
  const char *descriptors; /* a shared library with the service's protobuf-c descriptors */

  /* debug */
  unsigned seconds;
  const char *output;
} ctl_opts_t;

/* One connection to a shim, used synchronously by running the loop until each answer. */
typedef struct ctl_client_s
{
  uv_loop_t loop;
  cshim_ttrpc_client_t *client;
  const ctl_opts_t *opts;
  char *path;
} ctl_client_t;

/* The socket path of an address ("unix:///p", "/p"). Borrowed from address. */
const char *ctl_socket_path(const char *address);

/* Connect to opts->address (a plain connect first, so that a missing socket or a refused
   connection is reported as such: "connect `path`: ..."). */
int ctl_client_open(ctl_client_t *c, const ctl_opts_t *opts, cshim_error_t *err);
/* Call a method of the task service and wait for its answer. *out is the decoded response
   (caller frees with protobuf_c_message_free_unpacked), NULL for Empty. On a failed RPC, err
   carries the server's gRPC code and message. */
int ctl_client_call(ctl_client_t *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **out,
                    cshim_error_t *err);
void ctl_client_close(ctl_client_t *c);

/* Commands; each returns the process exit status. */
int ctl_cmd_task(const ctl_opts_t *opts);
int ctl_cmd_launch(const ctl_opts_t *opts);
int ctl_cmd_teardown(const ctl_opts_t *opts);
int ctl_cmd_debug(const ctl_opts_t *opts);
int ctl_cmd_events(const ctl_opts_t *opts);
int ctl_cmd_upgrade(const ctl_opts_t *opts);
int ctl_cmd_call(const ctl_opts_t *opts);

/* Print "cshimctl: <message>" on stderr, release err, return 1. */
int ctl_fail(cshim_error_t *err);
/* Print "cshimctl: <formatted>" on stderr and return 2 (usage errors). */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print j indented, in its key order, on stdout, and release it. */
void ctl_print_json(json_t *j);

/* RFC 3339 text of a protobuf timestamp (Go's zero time reads 0001-01-01T00:00:00Z); NULL ->
   "". Writes into buf. */
const char *ctl_format_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t size);

#endif
