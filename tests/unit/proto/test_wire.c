// SPDX-License-Identifier: Apache-2.0
// Checks the generated protobuf-c descriptors and encodings against shim-protocol.md.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/introspection.pb-c.h"
#include "containerd/types/mount.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"
#include "ttrpc/request.pb-c.h"
#include "echo.pb-c.h"

#define TT(m) ttrpc__##m##__descriptor
#define GP(m) google__protobuf__##m##__descriptor
#define CT(m) containerd__types__##m##__descriptor
#define V1(m) containerd__v1__types__##m##__descriptor
#define T2(m) containerd__task__v2__##m##__descriptor
#define EV(m) containerd__events__##m##__descriptor
#define FW(m) containerd__services__events__ttrpc__v1__##m##__descriptor
#define RC(m) containerd__runc__v1__##m##__descriptor
#define BS(m) containerd__runtime__bootstrap__v1__##m##__descriptor

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) (sizeof(s) - 1), ((const uint8_t *)(s)) /* unpack takes len, then data */

struct message_case
{
  const ProtobufCMessageDescriptor *desc;
  const char *full_name;
  const char *package;
  unsigned n_fields;
};

struct field_case
{
  const ProtobufCMessageDescriptor *msg;
  const char *name;
  unsigned number;
  ProtobufCType type;
  ProtobufCLabel label;
  const char *type_name; /* full name of the message or enum type; NULL for scalars */
  uint32_t flags;        /* expected PROTOBUF_C_FIELD_FLAG_{PACKED,ONEOF} bits */
};

struct enum_value_case
{
  const ProtobufCEnumDescriptor *desc;
  const char *name;
  int value;
};

struct method_case
{
  const char *name;
  const ProtobufCMessageDescriptor *input;
  const ProtobufCMessageDescriptor *output;
};

static const struct message_case messages[] = {
    {&TT(request), "ttrpc.Request", "ttrpc", 5},
    {&TT(response), "ttrpc.Response", "ttrpc", 2},
    {&TT(key_value), "ttrpc.KeyValue", "ttrpc", 2},
    {&TT(string_list), "ttrpc.StringList", "ttrpc", 1},
    {&google__rpc__status__descriptor, "google.rpc.Status", "google.rpc", 3},
    {&GP(any), "google.protobuf.Any", "google.protobuf", 2},
    {&GP(empty), "google.protobuf.Empty", "google.protobuf", 0},
    {&GP(timestamp), "google.protobuf.Timestamp", "google.protobuf", 2},
    {&CT(mount), "containerd.types.Mount", "containerd.types", 4},
    {&V1(process_info), "containerd.v1.types.ProcessInfo", "containerd.v1.types", 2},
    {&V1(process), "containerd.v1.types.Process", "containerd.v1.types", 10},
    {&CT(runtime_request), "containerd.types.RuntimeRequest", "containerd.types", 2},
    {&CT(runtime_version), "containerd.types.RuntimeVersion", "containerd.types", 2},
    {&CT(runtime_info), "containerd.types.RuntimeInfo", "containerd.types", 5},
    {&CT(runtime_info__annotations_entry), "containerd.types.RuntimeInfo.AnnotationsEntry",
     "containerd.types", 2},
    {&T2(create_task_request), "containerd.task.v2.CreateTaskRequest", "containerd.task.v2", 10},
    {&T2(create_task_response), "containerd.task.v2.CreateTaskResponse", "containerd.task.v2", 1},
    {&T2(start_request), "containerd.task.v2.StartRequest", "containerd.task.v2", 2},
    {&T2(start_response), "containerd.task.v2.StartResponse", "containerd.task.v2", 1},
    {&T2(delete_request), "containerd.task.v2.DeleteRequest", "containerd.task.v2", 2},
    {&T2(delete_response), "containerd.task.v2.DeleteResponse", "containerd.task.v2", 3},
    {&T2(exec_process_request), "containerd.task.v2.ExecProcessRequest", "containerd.task.v2", 7},
    {&T2(exec_process_response), "containerd.task.v2.ExecProcessResponse", "containerd.task.v2", 0},
    {&T2(resize_pty_request), "containerd.task.v2.ResizePtyRequest", "containerd.task.v2", 4},
    {&T2(state_request), "containerd.task.v2.StateRequest", "containerd.task.v2", 2},
    {&T2(state_response), "containerd.task.v2.StateResponse", "containerd.task.v2", 11},
    {&T2(kill_request), "containerd.task.v2.KillRequest", "containerd.task.v2", 4},
    {&T2(close_iorequest), "containerd.task.v2.CloseIORequest", "containerd.task.v2", 3},
    {&T2(pids_request), "containerd.task.v2.PidsRequest", "containerd.task.v2", 1},
    {&T2(pids_response), "containerd.task.v2.PidsResponse", "containerd.task.v2", 1},
    {&T2(checkpoint_task_request), "containerd.task.v2.CheckpointTaskRequest", "containerd.task.v2",
     3},
    {&T2(update_task_request), "containerd.task.v2.UpdateTaskRequest", "containerd.task.v2", 3},
    {&T2(update_task_request__annotations_entry),
     "containerd.task.v2.UpdateTaskRequest.AnnotationsEntry", "containerd.task.v2", 2},
    {&T2(wait_request), "containerd.task.v2.WaitRequest", "containerd.task.v2", 2},
    {&T2(wait_response), "containerd.task.v2.WaitResponse", "containerd.task.v2", 2},
    {&T2(stats_request), "containerd.task.v2.StatsRequest", "containerd.task.v2", 1},
    {&T2(stats_response), "containerd.task.v2.StatsResponse", "containerd.task.v2", 1},
    {&T2(connect_request), "containerd.task.v2.ConnectRequest", "containerd.task.v2", 1},
    {&T2(connect_response), "containerd.task.v2.ConnectResponse", "containerd.task.v2", 3},
    {&T2(shutdown_request), "containerd.task.v2.ShutdownRequest", "containerd.task.v2", 2},
    {&T2(pause_request), "containerd.task.v2.PauseRequest", "containerd.task.v2", 1},
    {&T2(resume_request), "containerd.task.v2.ResumeRequest", "containerd.task.v2", 1},
    {&EV(task_create), "containerd.events.TaskCreate", "containerd.events", 6},
    {&EV(task_start), "containerd.events.TaskStart", "containerd.events", 2},
    {&EV(task_delete), "containerd.events.TaskDelete", "containerd.events", 5},
    {&EV(task_io), "containerd.events.TaskIO", "containerd.events", 4},
    {&EV(task_exit), "containerd.events.TaskExit", "containerd.events", 5},
    {&EV(task_oom), "containerd.events.TaskOOM", "containerd.events", 1},
    {&EV(task_exec_added), "containerd.events.TaskExecAdded", "containerd.events", 2},
    {&EV(task_exec_started), "containerd.events.TaskExecStarted", "containerd.events", 3},
    {&EV(task_paused), "containerd.events.TaskPaused", "containerd.events", 1},
    {&EV(task_resumed), "containerd.events.TaskResumed", "containerd.events", 1},
    {&EV(task_checkpointed), "containerd.events.TaskCheckpointed", "containerd.events", 2},
    {&FW(forward_request), "containerd.services.events.ttrpc.v1.ForwardRequest",
     "containerd.services.events.ttrpc.v1", 1},
    {&FW(envelope), "containerd.services.events.ttrpc.v1.Envelope",
     "containerd.services.events.ttrpc.v1", 4},
    {&RC(options), "containerd.runc.v1.Options", "containerd.runc.v1", 13},
    {&RC(checkpoint_options), "containerd.runc.v1.CheckpointOptions", "containerd.runc.v1", 10},
    {&RC(process_details), "containerd.runc.v1.ProcessDetails", "containerd.runc.v1", 1},
    {&runtimeoptions__v1__options__descriptor, "runtimeoptions.v1.Options", "runtimeoptions.v1", 3},
    {&BS(bootstrap_params), "containerd.runtime.bootstrap.v1.BootstrapParams",
     "containerd.runtime.bootstrap.v1", 9},
    {&BS(extension), "containerd.runtime.bootstrap.v1.Extension", "containerd.runtime.bootstrap.v1",
     1},
    {&BS(bootstrap_result), "containerd.runtime.bootstrap.v1.BootstrapResult",
     "containerd.runtime.bootstrap.v1", 5},
    {&BS(bootstrap_result__metadata_entry),
     "containerd.runtime.bootstrap.v1.BootstrapResult.MetadataEntry",
     "containerd.runtime.bootstrap.v1", 2},
};

#define F(desc, name, number, type, label, type_name)                                              \
  {                                                                                                \
    &(desc), (name), (number), PROTOBUF_C_TYPE_##type, PROTOBUF_C_LABEL_##label, (type_name), 0    \
  }
#define FF(desc, name, number, type, label, type_name, flags)                                      \
  {                                                                                                \
    &(desc), (name), (number), PROTOBUF_C_TYPE_##type, PROTOBUF_C_LABEL_##label, (type_name),      \
        (flags)                                                                                    \
  }

#define ANY "google.protobuf.Any"
#define TIMESTAMP "google.protobuf.Timestamp"
#define MOUNT "containerd.types.Mount"

static const struct field_case fields[] = {
    /* §1.4 ttrpc envelope */
    F(TT(request), "service", 1, STRING, NONE, NULL),
    F(TT(request), "method", 2, STRING, NONE, NULL),
    F(TT(request), "payload", 3, BYTES, NONE, NULL),
    F(TT(request), "timeout_nano", 4, INT64, NONE, NULL),
    F(TT(request), "metadata", 5, MESSAGE, REPEATED, "ttrpc.KeyValue"),
    F(TT(response), "status", 1, MESSAGE, NONE, "google.rpc.Status"),
    F(TT(response), "payload", 2, BYTES, NONE, NULL),
    F(TT(key_value), "key", 1, STRING, NONE, NULL),
    F(TT(key_value), "value", 2, STRING, NONE, NULL),
    F(TT(string_list), "list", 1, STRING, REPEATED, NULL),
    F(google__rpc__status__descriptor, "code", 1, INT32, NONE, NULL),
    F(google__rpc__status__descriptor, "message", 2, STRING, NONE, NULL),
    F(google__rpc__status__descriptor, "details", 3, MESSAGE, REPEATED, ANY),

    /* §2.3 well-known and shared types */
    F(GP(any), "type_url", 1, STRING, NONE, NULL),
    F(GP(any), "value", 2, BYTES, NONE, NULL),
    F(GP(timestamp), "seconds", 1, INT64, NONE, NULL),
    F(GP(timestamp), "nanos", 2, INT32, NONE, NULL),
    F(CT(mount), "type", 1, STRING, NONE, NULL),
    F(CT(mount), "source", 2, STRING, NONE, NULL),
    F(CT(mount), "target", 3, STRING, NONE, NULL),
    F(CT(mount), "options", 4, STRING, REPEATED, NULL),
    F(V1(process_info), "pid", 1, UINT32, NONE, NULL),
    F(V1(process_info), "info", 2, MESSAGE, NONE, ANY),
    F(V1(process), "container_id", 1, STRING, NONE, NULL),
    F(V1(process), "id", 2, STRING, NONE, NULL),
    F(V1(process), "pid", 3, UINT32, NONE, NULL),
    F(V1(process), "status", 4, ENUM, NONE, "containerd.v1.types.Status"),
    F(V1(process), "stdin", 5, STRING, NONE, NULL),
    F(V1(process), "stdout", 6, STRING, NONE, NULL),
    F(V1(process), "stderr", 7, STRING, NONE, NULL),
    F(V1(process), "terminal", 8, BOOL, NONE, NULL),
    F(V1(process), "exit_status", 9, UINT32, NONE, NULL),
    F(V1(process), "exited_at", 10, MESSAGE, NONE, TIMESTAMP),

    /* §4.8 introspection */
    F(CT(runtime_request), "runtime_path", 1, STRING, NONE, NULL),
    F(CT(runtime_request), "options", 2, MESSAGE, NONE, ANY),
    F(CT(runtime_version), "version", 1, STRING, NONE, NULL),
    F(CT(runtime_version), "revision", 2, STRING, NONE, NULL),
    F(CT(runtime_info), "name", 1, STRING, NONE, NULL),
    F(CT(runtime_info), "version", 2, MESSAGE, NONE, "containerd.types.RuntimeVersion"),
    F(CT(runtime_info), "options", 3, MESSAGE, NONE, ANY),
    F(CT(runtime_info), "features", 4, MESSAGE, NONE, ANY),
    F(CT(runtime_info), "annotations", 5, MESSAGE, REPEATED,
      "containerd.types.RuntimeInfo.AnnotationsEntry"),
    F(CT(runtime_info__annotations_entry), "key", 1, STRING, NONE, NULL),
    F(CT(runtime_info__annotations_entry), "value", 2, STRING, NONE, NULL),

    /* §2.2 task API */
    F(T2(create_task_request), "id", 1, STRING, NONE, NULL),
    F(T2(create_task_request), "bundle", 2, STRING, NONE, NULL),
    F(T2(create_task_request), "rootfs", 3, MESSAGE, REPEATED, MOUNT),
    F(T2(create_task_request), "terminal", 4, BOOL, NONE, NULL),
    F(T2(create_task_request), "stdin", 5, STRING, NONE, NULL),
    F(T2(create_task_request), "stdout", 6, STRING, NONE, NULL),
    F(T2(create_task_request), "stderr", 7, STRING, NONE, NULL),
    F(T2(create_task_request), "checkpoint", 8, STRING, NONE, NULL),
    F(T2(create_task_request), "parent_checkpoint", 9, STRING, NONE, NULL),
    F(T2(create_task_request), "options", 10, MESSAGE, NONE, ANY),
    F(T2(create_task_response), "pid", 1, UINT32, NONE, NULL),
    F(T2(start_request), "id", 1, STRING, NONE, NULL),
    F(T2(start_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(start_response), "pid", 1, UINT32, NONE, NULL),
    F(T2(delete_request), "id", 1, STRING, NONE, NULL),
    F(T2(delete_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(delete_response), "pid", 1, UINT32, NONE, NULL),
    F(T2(delete_response), "exit_status", 2, UINT32, NONE, NULL),
    F(T2(delete_response), "exited_at", 3, MESSAGE, NONE, TIMESTAMP),
    F(T2(exec_process_request), "id", 1, STRING, NONE, NULL),
    F(T2(exec_process_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(exec_process_request), "terminal", 3, BOOL, NONE, NULL),
    F(T2(exec_process_request), "stdin", 4, STRING, NONE, NULL),
    F(T2(exec_process_request), "stdout", 5, STRING, NONE, NULL),
    F(T2(exec_process_request), "stderr", 6, STRING, NONE, NULL),
    F(T2(exec_process_request), "spec", 7, MESSAGE, NONE, ANY),
    F(T2(resize_pty_request), "id", 1, STRING, NONE, NULL),
    F(T2(resize_pty_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(resize_pty_request), "width", 3, UINT32, NONE, NULL),
    F(T2(resize_pty_request), "height", 4, UINT32, NONE, NULL),
    F(T2(state_request), "id", 1, STRING, NONE, NULL),
    F(T2(state_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(state_response), "id", 1, STRING, NONE, NULL),
    F(T2(state_response), "bundle", 2, STRING, NONE, NULL),
    F(T2(state_response), "pid", 3, UINT32, NONE, NULL),
    F(T2(state_response), "status", 4, ENUM, NONE, "containerd.v1.types.Status"),
    F(T2(state_response), "stdin", 5, STRING, NONE, NULL),
    F(T2(state_response), "stdout", 6, STRING, NONE, NULL),
    F(T2(state_response), "stderr", 7, STRING, NONE, NULL),
    F(T2(state_response), "terminal", 8, BOOL, NONE, NULL),
    F(T2(state_response), "exit_status", 9, UINT32, NONE, NULL),
    F(T2(state_response), "exited_at", 10, MESSAGE, NONE, TIMESTAMP),
    F(T2(state_response), "exec_id", 11, STRING, NONE, NULL),
    F(T2(kill_request), "id", 1, STRING, NONE, NULL),
    F(T2(kill_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(kill_request), "signal", 3, UINT32, NONE, NULL),
    F(T2(kill_request), "all", 4, BOOL, NONE, NULL),
    F(T2(close_iorequest), "id", 1, STRING, NONE, NULL),
    F(T2(close_iorequest), "exec_id", 2, STRING, NONE, NULL),
    F(T2(close_iorequest), "stdin", 3, BOOL, NONE, NULL),
    F(T2(pids_request), "id", 1, STRING, NONE, NULL),
    F(T2(pids_response), "processes", 1, MESSAGE, REPEATED, "containerd.v1.types.ProcessInfo"),
    F(T2(checkpoint_task_request), "id", 1, STRING, NONE, NULL),
    F(T2(checkpoint_task_request), "path", 2, STRING, NONE, NULL),
    F(T2(checkpoint_task_request), "options", 3, MESSAGE, NONE, ANY),
    F(T2(update_task_request), "id", 1, STRING, NONE, NULL),
    F(T2(update_task_request), "resources", 2, MESSAGE, NONE, ANY),
    F(T2(update_task_request), "annotations", 3, MESSAGE, REPEATED,
      "containerd.task.v2.UpdateTaskRequest.AnnotationsEntry"),
    F(T2(update_task_request__annotations_entry), "key", 1, STRING, NONE, NULL),
    F(T2(update_task_request__annotations_entry), "value", 2, STRING, NONE, NULL),
    F(T2(wait_request), "id", 1, STRING, NONE, NULL),
    F(T2(wait_request), "exec_id", 2, STRING, NONE, NULL),
    F(T2(wait_response), "exit_status", 1, UINT32, NONE, NULL),
    F(T2(wait_response), "exited_at", 2, MESSAGE, NONE, TIMESTAMP),
    F(T2(stats_request), "id", 1, STRING, NONE, NULL),
    F(T2(stats_response), "stats", 1, MESSAGE, NONE, ANY),
    F(T2(connect_request), "id", 1, STRING, NONE, NULL),
    F(T2(connect_response), "shim_pid", 1, UINT32, NONE, NULL),
    F(T2(connect_response), "task_pid", 2, UINT32, NONE, NULL),
    F(T2(connect_response), "version", 3, STRING, NONE, NULL),
    F(T2(shutdown_request), "id", 1, STRING, NONE, NULL),
    F(T2(shutdown_request), "now", 2, BOOL, NONE, NULL),
    F(T2(pause_request), "id", 1, STRING, NONE, NULL),
    F(T2(resume_request), "id", 1, STRING, NONE, NULL),

    /* §3.1 events */
    F(EV(task_create), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_create), "bundle", 2, STRING, NONE, NULL),
    F(EV(task_create), "rootfs", 3, MESSAGE, REPEATED, MOUNT),
    F(EV(task_create), "io", 4, MESSAGE, NONE, "containerd.events.TaskIO"),
    F(EV(task_create), "checkpoint", 5, STRING, NONE, NULL),
    F(EV(task_create), "pid", 6, UINT32, NONE, NULL),
    F(EV(task_start), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_start), "pid", 2, UINT32, NONE, NULL),
    F(EV(task_delete), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_delete), "pid", 2, UINT32, NONE, NULL),
    F(EV(task_delete), "exit_status", 3, UINT32, NONE, NULL),
    F(EV(task_delete), "exited_at", 4, MESSAGE, NONE, TIMESTAMP),
    F(EV(task_delete), "id", 5, STRING, NONE, NULL),
    F(EV(task_io), "stdin", 1, STRING, NONE, NULL),
    F(EV(task_io), "stdout", 2, STRING, NONE, NULL),
    F(EV(task_io), "stderr", 3, STRING, NONE, NULL),
    F(EV(task_io), "terminal", 4, BOOL, NONE, NULL),
    F(EV(task_exit), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_exit), "id", 2, STRING, NONE, NULL),
    F(EV(task_exit), "pid", 3, UINT32, NONE, NULL),
    F(EV(task_exit), "exit_status", 4, UINT32, NONE, NULL),
    F(EV(task_exit), "exited_at", 5, MESSAGE, NONE, TIMESTAMP),
    F(EV(task_oom), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_exec_added), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_exec_added), "exec_id", 2, STRING, NONE, NULL),
    F(EV(task_exec_started), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_exec_started), "exec_id", 2, STRING, NONE, NULL),
    F(EV(task_exec_started), "pid", 3, UINT32, NONE, NULL),
    F(EV(task_paused), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_resumed), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_checkpointed), "container_id", 1, STRING, NONE, NULL),
    F(EV(task_checkpointed), "checkpoint", 2, STRING, NONE, NULL),

    /* §3.2 event forwarding */
    F(FW(forward_request), "envelope", 1, MESSAGE, NONE,
      "containerd.services.events.ttrpc.v1.Envelope"),
    F(FW(envelope), "timestamp", 1, MESSAGE, NONE, TIMESTAMP),
    F(FW(envelope), "namespace", 2, STRING, NONE, NULL),
    F(FW(envelope), "topic", 3, STRING, NONE, NULL),
    F(FW(envelope), "event", 4, MESSAGE, NONE, ANY),

    /* §6.6 runc and CRI options */
    F(RC(options), "no_pivot_root", 1, BOOL, NONE, NULL),
    F(RC(options), "no_new_keyring", 2, BOOL, NONE, NULL),
    F(RC(options), "shim_cgroup", 3, STRING, NONE, NULL),
    F(RC(options), "io_uid", 4, UINT32, NONE, NULL),
    F(RC(options), "io_gid", 5, UINT32, NONE, NULL),
    F(RC(options), "binary_name", 6, STRING, NONE, NULL),
    F(RC(options), "root", 7, STRING, NONE, NULL),
    F(RC(options), "criu_path", 8, STRING, NONE, NULL),
    F(RC(options), "systemd_cgroup", 9, BOOL, NONE, NULL),
    F(RC(options), "criu_image_path", 10, STRING, NONE, NULL),
    F(RC(options), "criu_work_path", 11, STRING, NONE, NULL),
    F(RC(options), "task_api_address", 12, STRING, NONE, NULL),
    F(RC(options), "task_api_version", 13, UINT32, NONE, NULL),
    F(RC(checkpoint_options), "exit", 1, BOOL, NONE, NULL),
    F(RC(checkpoint_options), "open_tcp", 2, BOOL, NONE, NULL),
    F(RC(checkpoint_options), "external_unix_sockets", 3, BOOL, NONE, NULL),
    F(RC(checkpoint_options), "terminal", 4, BOOL, NONE, NULL),
    F(RC(checkpoint_options), "file_locks", 5, BOOL, NONE, NULL),
    F(RC(checkpoint_options), "empty_namespaces", 6, STRING, REPEATED, NULL),
    F(RC(checkpoint_options), "cgroups_mode", 7, STRING, NONE, NULL),
    F(RC(checkpoint_options), "image_path", 8, STRING, NONE, NULL),
    F(RC(checkpoint_options), "work_path", 9, STRING, NONE, NULL),
    F(RC(checkpoint_options), "parent_path", 10, STRING, NONE, NULL),
    F(RC(process_details), "exec_id", 1, STRING, NONE, NULL),
    F(runtimeoptions__v1__options__descriptor, "type_url", 1, STRING, NONE, NULL),
    F(runtimeoptions__v1__options__descriptor, "config_path", 2, STRING, NONE, NULL),
    F(runtimeoptions__v1__options__descriptor, "config_body", 3, BYTES, NONE, NULL),

    /* §4.6 bootstrap */
    F(BS(bootstrap_params), "instance_id", 1, STRING, NONE, NULL),
    F(BS(bootstrap_params), "namespace", 2, STRING, NONE, NULL),
    F(BS(bootstrap_params), "log_level", 3, ENUM, NONE, "containerd.runtime.bootstrap.v1.LogLevel"),
    F(BS(bootstrap_params), "containerd_version", 4, STRING, NONE, NULL),
    F(BS(bootstrap_params), "containerd_ttrpc_address", 5, STRING, NONE, NULL),
    F(BS(bootstrap_params), "containerd_grpc_address", 6, STRING, NONE, NULL),
    F(BS(bootstrap_params), "containerd_binary", 7, STRING, NONE, NULL),
    F(BS(bootstrap_params), "extensions", 8, MESSAGE, REPEATED,
      "containerd.runtime.bootstrap.v1.Extension"),
    FF(BS(bootstrap_params), "socket_dir", 9, STRING, NONE, NULL, PROTOBUF_C_FIELD_FLAG_ONEOF),
    F(BS(extension), "value", 1, MESSAGE, NONE, ANY),
    F(BS(bootstrap_result), "version", 1, INT32, NONE, NULL),
    F(BS(bootstrap_result), "address", 2, STRING, NONE, NULL),
    F(BS(bootstrap_result), "protocol", 3, STRING, NONE, NULL),
    FF(BS(bootstrap_result), "capabilities", 4, ENUM, REPEATED,
       "containerd.runtime.bootstrap.v1.Capability", PROTOBUF_C_FIELD_FLAG_PACKED),
    F(BS(bootstrap_result), "metadata", 5, MESSAGE, REPEATED,
      "containerd.runtime.bootstrap.v1.BootstrapResult.MetadataEntry"),
    F(BS(bootstrap_result__metadata_entry), "key", 1, STRING, NONE, NULL),
    F(BS(bootstrap_result__metadata_entry), "value", 2, STRING, NONE, NULL),
};

static const struct enum_value_case enum_values[] = {
    {&V1(status), "UNKNOWN", 0},
    {&V1(status), "CREATED", 1},
    {&V1(status), "RUNNING", 2},
    {&V1(status), "STOPPED", 3},
    {&V1(status), "PAUSED", 4},
    {&V1(status), "PAUSING", 5},
    {&BS(log_level), "LOG_LEVEL_INFO", 0},
    {&BS(log_level), "LOG_LEVEL_TRACE", -8},
    {&BS(log_level), "LOG_LEVEL_DEBUG", -4},
    {&BS(log_level), "LOG_LEVEL_WARN", 4},
    {&BS(log_level), "LOG_LEVEL_ERROR", 8},
    {&BS(log_level), "LOG_LEVEL_FATAL", 10},
    {&BS(log_level), "LOG_LEVEL_PANIC", 12},
    {&BS(capability), "CAPABILITY_UNSPECIFIED", 0},
};

/* In declaration order, which is also the method index protobuf-c uses. */
static const struct method_case task_methods[] = {
    {"State", &T2(state_request), &T2(state_response)},
    {"Create", &T2(create_task_request), &T2(create_task_response)},
    {"Start", &T2(start_request), &T2(start_response)},
    {"Delete", &T2(delete_request), &T2(delete_response)},
    {"Pids", &T2(pids_request), &T2(pids_response)},
    {"Pause", &T2(pause_request), &GP(empty)},
    {"Resume", &T2(resume_request), &GP(empty)},
    {"Checkpoint", &T2(checkpoint_task_request), &GP(empty)},
    {"Kill", &T2(kill_request), &GP(empty)},
    {"Exec", &T2(exec_process_request), &GP(empty)},
    {"ResizePty", &T2(resize_pty_request), &GP(empty)},
    {"CloseIO", &T2(close_iorequest), &GP(empty)},
    {"Update", &T2(update_task_request), &GP(empty)},
    {"Wait", &T2(wait_request), &T2(wait_response)},
    {"Stats", &T2(stats_request), &T2(stats_response)},
    {"Connect", &T2(connect_request), &T2(connect_response)},
    {"Shutdown", &T2(shutdown_request), &GP(empty)},
};

static const char *
type_name_of(const ProtobufCFieldDescriptor *f)
{
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
  if (f->type == PROTOBUF_C_TYPE_ENUM)
    return ((const ProtobufCEnumDescriptor *)f->descriptor)->name;
  return NULL;
}

static void
check_service(const ProtobufCServiceDescriptor *svc, const char *name, const char *package,
              const struct method_case *methods, size_t n_methods)
{
  size_t i;

  assert_string_equal(svc->name, name);
  assert_string_equal(svc->package, package);
  assert_int_equal(svc->n_methods, n_methods);
  for (i = 0; i < n_methods; i++) {
    const ProtobufCMethodDescriptor *m = &svc->methods[i];
    const ProtobufCMethodDescriptor *by_name;

    assert_string_equal(m->name, methods[i].name);
    assert_ptr_equal(m->input, methods[i].input);
    assert_ptr_equal(m->output, methods[i].output);
    by_name = protobuf_c_service_descriptor_get_method_by_name(svc, methods[i].name);
    if (by_name != m)
      fail_msg("%s: method `%s` not found by name", name, methods[i].name);
  }
}

static void
test_wire_message_names_and_field_counts_match_contract(void **state)
{
  size_t i;

  for (i = 0; i < ARRAY_LEN(messages); i++) {
    const struct message_case *c = &messages[i];

    assert_int_equal(c->desc->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    assert_string_equal(c->desc->name, c->full_name);
    assert_string_equal(c->desc->package_name, c->package);
    if (c->desc->n_fields != c->n_fields)
      fail_msg("%s: %u fields, contract has %u", c->full_name, c->desc->n_fields, c->n_fields);
  }
}

static void
test_wire_fields_match_contract(void **state)
{
  size_t i, j;

  for (i = 0; i < ARRAY_LEN(fields); i++) {
    const struct field_case *c = &fields[i];
    const char *msg = c->msg->name;
    const ProtobufCFieldDescriptor *f;
    const char *type_name;

    f = protobuf_c_message_descriptor_get_field_by_name(c->msg, c->name);
    if (f == NULL)
      fail_msg("%s: no field `%s`", msg, c->name);
    if (f->id != c->number)
      fail_msg("%s.%s: number %u, want %u", msg, c->name, f->id, c->number);
    if (f->type != c->type)
      fail_msg("%s.%s: type %d, want %d", msg, c->name, (int)f->type, (int)c->type);
    if (f->label != c->label)
      fail_msg("%s.%s: label %d, want %d", msg, c->name, (int)f->label, (int)c->label);
    if (protobuf_c_message_descriptor_get_field(c->msg, c->number) != f)
      fail_msg("%s.%s: not found by number %u", msg, c->name, c->number);
    type_name = type_name_of(f);
    if ((type_name == NULL) != (c->type_name == NULL) ||
        (type_name != NULL && strcmp(type_name, c->type_name) != 0))
      fail_msg("%s.%s: type `%s`, want `%s`", msg, c->name, type_name ? type_name : "-",
               c->type_name ? c->type_name : "-");
    if ((f->flags & (PROTOBUF_C_FIELD_FLAG_PACKED | PROTOBUF_C_FIELD_FLAG_ONEOF)) != c->flags)
      fail_msg("%s.%s: flags %#x, want %#x", msg, c->name, f->flags, c->flags);
  }

  /* Every field of every listed message is in the table: nothing extra was declared. */
  for (i = 0; i < ARRAY_LEN(messages); i++) {
    unsigned n = 0;

    for (j = 0; j < ARRAY_LEN(fields); j++)
      if (fields[j].msg == messages[i].desc)
        n++;
    if (n != messages[i].desc->n_fields)
      fail_msg("%s: table lists %u fields, descriptor has %u", messages[i].full_name, n,
               messages[i].desc->n_fields);
  }
}

static void
test_wire_enums_match_contract(void **state)
{
  size_t i;

  assert_string_equal(V1(status).name, "containerd.v1.types.Status");
  assert_int_equal(V1(status).n_values, 6);
  assert_string_equal(BS(log_level).name, "containerd.runtime.bootstrap.v1.LogLevel");
  assert_int_equal(BS(log_level).n_values, 7);
  assert_string_equal(BS(capability).name, "containerd.runtime.bootstrap.v1.Capability");
  assert_int_equal(BS(capability).n_values, 1);

  for (i = 0; i < ARRAY_LEN(enum_values); i++) {
    const struct enum_value_case *c = &enum_values[i];
    const ProtobufCEnumValue *by_name, *by_value;

    by_name = protobuf_c_enum_descriptor_get_value_by_name(c->desc, c->name);
    by_value = protobuf_c_enum_descriptor_get_value(c->desc, c->value);
    if (by_name == NULL || by_name->value != c->value)
      fail_msg("%s.%s: want value %d", c->desc->name, c->name, c->value);
    if (by_value == NULL || strcmp(by_value->name, c->name) != 0)
      fail_msg("%s: value %d, want name %s", c->desc->name, c->value, c->name);
  }
}

static void
test_wire_services_match_contract(void **state)
{
  static const struct method_case forward[] = {
      {"Forward", &FW(forward_request), &GP(empty)},
  };

  check_service(&containerd__task__v2__task__descriptor, "containerd.task.v2.Task",
                "containerd.task.v2", task_methods, ARRAY_LEN(task_methods));
  check_service(&containerd__services__events__ttrpc__v1__events__descriptor,
                "containerd.services.events.ttrpc.v1.Events", "containerd.services.events.ttrpc.v1",
                forward, ARRAY_LEN(forward));
}

static void
test_wire_ttrpc_request_packs_to_golden_bytes(void **state)
{
  /* service, method, payload = CreateTaskRequest{id:"abc"}, timeout 3 s, namespace metadata */
  static const uint8_t want[] = "\x0a\x17" /* 1 service, 23 bytes */
                                "containerd.task.v2.Task"
                                "\x12\x06" /* 2 method */
                                "Create"
                                "\x1a\x05" /* 3 payload: CreateTaskRequest{1 id "abc"} */
                                "\x0a\x03"
                                "abc"
                                "\x20\x80\xbc\xc1\x96\x0b" /* 4 timeout_nano 3000000000 */
                                "\x2a\x25" /* 5 metadata: KeyValue{1 key, 2 value} */
                                "\x0a\x1a"
                                "containerd-namespace-ttrpc"
                                "\x12\x07"
                                "default";
  Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT;
  Ttrpc__KeyValue *metadata[] = {&kv};
  Containerd__Task__V2__CreateTaskRequest create = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  uint8_t payload[16];
  uint8_t buf[sizeof(want)];
  Ttrpc__Request *back;

  create.id = (char *)"abc";
  assert_int_equal(containerd__task__v2__create_task_request__get_packed_size(&create), 5);
  containerd__task__v2__create_task_request__pack(&create, payload);

  kv.key = (char *)"containerd-namespace-ttrpc";
  kv.value = (char *)"default";
  req.service = (char *)"containerd.task.v2.Task";
  req.method = (char *)"Create";
  req.payload.data = payload;
  req.payload.len = 5;
  req.timeout_nano = 3000000000;
  req.n_metadata = 1;
  req.metadata = metadata;

  assert_int_equal(ttrpc__request__get_packed_size(&req), sizeof(want) - 1);
  assert_int_equal(ttrpc__request__pack(&req, buf), sizeof(want) - 1);
  assert_memory_equal(buf, want, sizeof(want) - 1);

  back = ttrpc__request__unpack(NULL, LIT(want));
  assert_non_null(back);
  assert_string_equal(back->service, "containerd.task.v2.Task");
  assert_string_equal(back->method, "Create");
  assert_int_equal(back->payload.len, 5);
  assert_memory_equal(back->payload.data, payload, 5);
  assert_int_equal(back->timeout_nano, 3000000000);
  assert_int_equal(back->n_metadata, 1);
  assert_string_equal(back->metadata[0]->key, "containerd-namespace-ttrpc");
  assert_string_equal(back->metadata[0]->value, "default");
  ttrpc__request__free_unpacked(back, NULL);
}

static void
test_wire_ttrpc_response_ok_carries_empty_status(void **state)
{
  /* Go always emits field 1 for OK; an Empty result has no payload at all. */
  Google__Rpc__Status ok = GOOGLE__RPC__STATUS__INIT;
  Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
  uint8_t buf[8];
  Ttrpc__Response *back;

  resp.status = &ok;
  assert_int_equal(ttrpc__response__pack(&resp, buf), 2);
  assert_memory_equal(buf, "\x0a\x00", 2);

  back = ttrpc__response__unpack(NULL, LIT("\x0a\x05\x08\x05\x12\x01"
                                           "x"));
  assert_non_null(back);
  assert_non_null(back->status);
  assert_int_equal(back->status->code, 5);
  assert_string_equal(back->status->message, "x");
  assert_int_equal(back->payload.len, 0);
  ttrpc__response__free_unpacked(back, NULL);
}

static void
test_wire_go_zero_timestamp_round_trips(void **state)
{
  /* 1 seconds as a 10-byte varint (negative int64); nanos 0 is omitted */
  static const uint8_t want[] = "\x08\x80\x92\xb8\xc3\x98\xfe\xff\xff\xff\x01";
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  uint8_t buf[sizeof(want)];
  Google__Protobuf__Timestamp *back;

  ts.seconds = -62135596800;
  assert_int_equal(google__protobuf__timestamp__pack(&ts, buf), sizeof(want) - 1);
  assert_memory_equal(buf, want, sizeof(want) - 1);

  back = google__protobuf__timestamp__unpack(NULL, LIT(want));
  assert_non_null(back);
  assert_true(back->seconds == -62135596800);
  assert_int_equal(back->nanos, 0);
  google__protobuf__timestamp__free_unpacked(back, NULL);
}

static void
test_wire_log_level_is_open_and_negative(void **state)
{
  /* 3 log_level -8: negative enums are sign-extended to 10 bytes */
  static const uint8_t trace[] = "\x18\xf8\xff\xff\xff\xff\xff\xff\xff\xff\x01";
  Containerd__Runtime__Bootstrap__V1__BootstrapParams p =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
  Containerd__Runtime__Bootstrap__V1__BootstrapParams *back;
  uint8_t buf[sizeof(trace)];

  p.log_level = CONTAINERD__RUNTIME__BOOTSTRAP__V1__LOG_LEVEL__LOG_LEVEL_TRACE;
  assert_int_equal(containerd__runtime__bootstrap__v1__bootstrap_params__pack(&p, buf),
                   sizeof(trace) - 1);
  assert_memory_equal(buf, trace, sizeof(trace) - 1);

  /* -2 names no level; an open enum must keep it. */
  back = containerd__runtime__bootstrap__v1__bootstrap_params__unpack(
      NULL, LIT("\x18\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"));
  assert_non_null(back);
  assert_int_equal((int)back->log_level, -2);
  containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(back, NULL);
}

static void
test_wire_socket_dir_keeps_presence(void **state)
{
  Containerd__Runtime__Bootstrap__V1__BootstrapParams p =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
  Containerd__Runtime__Bootstrap__V1__BootstrapParams *back;
  uint8_t buf[8];

  assert_int_equal(containerd__runtime__bootstrap__v1__bootstrap_params__get_packed_size(&p), 0);
  p._socket_dir_case = CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS___SOCKET_DIR_SOCKET_DIR;
  p.socket_dir = (char *)"";
  assert_int_equal(containerd__runtime__bootstrap__v1__bootstrap_params__pack(&p, buf), 2);
  assert_memory_equal(buf, "\x4a\x00", 2);

  back = containerd__runtime__bootstrap__v1__bootstrap_params__unpack(NULL, 2, buf);
  assert_non_null(back);
  assert_int_equal(back->_socket_dir_case,
                   CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS___SOCKET_DIR_SOCKET_DIR);
  assert_string_equal(back->socket_dir, "");
  containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(back, NULL);

  back = containerd__runtime__bootstrap__v1__bootstrap_params__unpack(NULL, 0, buf);
  assert_non_null(back);
  assert_int_equal(back->_socket_dir_case,
                   CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS___SOCKET_DIR__NOT_SET);
  containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(back, NULL);
}

static void
test_wire_map_is_repeated_entries(void **state)
{
  static const uint8_t want[] = "\x1a\x06"
                                "\x0a\x01"
                                "a"
                                "\x12\x01"
                                "b";
  Containerd__Task__V2__UpdateTaskRequest__AnnotationsEntry e =
      CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__ANNOTATIONS_ENTRY__INIT;
  Containerd__Task__V2__UpdateTaskRequest__AnnotationsEntry *entries[] = {&e};
  Containerd__Task__V2__UpdateTaskRequest u = CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
  uint8_t buf[sizeof(want)];

  e.key = (char *)"a";
  e.value = (char *)"b";
  u.n_annotations = 1;
  u.annotations = entries;
  assert_int_equal(containerd__task__v2__update_task_request__pack(&u, buf), sizeof(want) - 1);
  assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void
test_wire_unknown_fields_are_skipped(void **state)
{
  /* Mount{type:"bind"} followed by a field 5 that newer containerd versions may send. */
  Containerd__Types__Mount *m;

  m = containerd__types__mount__unpack(NULL, LIT("\x0a\x04"
                                                 "bind"
                                                 "\x2a\x01"
                                                 "z"));
  assert_non_null(m);
  assert_string_equal(m->type, "bind");
  containerd__types__mount__free_unpacked(m, NULL);
}

static void
test_wire_fixture_proto_reuses_cshim_descriptors(void **state)
{
  const ProtobufCFieldDescriptor *f;

  f = protobuf_c_message_descriptor_get_field_by_name(&cshim__test__v1__echo_request__descriptor,
                                                      "mounts");
  assert_non_null(f);
  assert_ptr_equal(f->descriptor, &containerd__types__mount__descriptor);
  assert_string_equal(cshim__test__v1__echo__descriptor.name, "cshim.test.v1.Echo");
  assert_ptr_equal(cshim__test__v1__echo__descriptor.methods[1].input, &GP(empty));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wire_message_names_and_field_counts_match_contract),
      cmocka_unit_test(test_wire_fields_match_contract),
      cmocka_unit_test(test_wire_enums_match_contract),
      cmocka_unit_test(test_wire_services_match_contract),
      cmocka_unit_test(test_wire_ttrpc_request_packs_to_golden_bytes),
      cmocka_unit_test(test_wire_ttrpc_response_ok_carries_empty_status),
      cmocka_unit_test(test_wire_go_zero_timestamp_round_trips),
      cmocka_unit_test(test_wire_log_level_is_open_and_negative),
      cmocka_unit_test(test_wire_socket_dir_keeps_presence),
      cmocka_unit_test(test_wire_map_is_repeated_entries),
      cmocka_unit_test(test_wire_unknown_fields_are_skipped),
      cmocka_unit_test(test_wire_fixture_proto_reuses_cshim_descriptors),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
