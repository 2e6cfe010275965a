// SPDX-License-Identifier: Apache-2.0
// cshimctl's task commands: the containerd task API (v2 or v3) spoken to any shim socket, with
// human or JSON output.
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/mount.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "stats.h"

#define PROCESS_SPEC_TYPE "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"
#define PROCESS_DETAILS_TYPE "containerd.runc.v1.ProcessDetails"

typedef struct task_cmd_s
{
  const char *name;
  const char *method;
  int (*run)(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err);
  bool needs_id;
} task_cmd_t;

static const char *
or_empty(const char *s)
{
  return s ? s : "";
}

static const char *
status_name(Containerd__V1__Types__Status s)
{
  switch (s) {
  case CONTAINERD__V1__TYPES__STATUS__CREATED:
    return "created";
  case CONTAINERD__V1__TYPES__STATUS__RUNNING:
    return "running";
  case CONTAINERD__V1__TYPES__STATUS__STOPPED:
    return "stopped";
  case CONTAINERD__V1__TYPES__STATUS__PAUSED:
    return "paused";
  case CONTAINERD__V1__TYPES__STATUS__PAUSING:
    return "pausing";
  default:
    return "unknown";
  }
}

/* Empty-answer commands print nothing (or {} with --json). */
static void
print_ok(const ctl_opts_t *o)
{
  if (o->json)
    puts("{}");
}

/* "KILL", "SIGKILL", "9" -> 9; -1 if unknown. */
static int
parse_signal(const char *s)
{
  static const struct
  {
    const char *name;
    int num;
  } names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},    {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
               {"USR1", SIGUSR1}, {"USR2", SIGUSR2},  {"TERM", SIGTERM}, {"CONT", SIGCONT},
               {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}};
  char *end;
  long n;

  if (s == NULL)
    return SIGTERM;
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(names); i++)
    if (strcasecmp(s, names[i].name) == 0)
      return names[i].num;
  n = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || n < 1 || n > 64)
    return -1;
  return (int)n;
}

/* --mount TYPE:SOURCE[:OPTION,OPTION...] */
static Containerd__Types__Mount *
parse_mount(const char *spec, cshim_error_t *err)
{
  Containerd__Types__Mount *m;
  cshim_autofree char *copy = cshim_xstrdup(spec);
  char *source = strchr(copy, ':'), *options;

  if (source == NULL || source == copy || source[1] == '\0') {
    cshim_error_make(err, EINVAL, "--mount `%s`: expected TYPE:SOURCE[:OPTIONS]", spec);
    return NULL;
  }
  *source++ = '\0';
  options = strchr(source, ':');
  if (options)
    *options++ = '\0';
  m = cshim_xmalloc(sizeof(*m));
  containerd__types__mount__init(m);
  m->type = cshim_xstrdup(copy);
  m->source = cshim_xstrdup(source);
  m->target = cshim_xstrdup("");
  if (options && *options) {
    char *save = NULL;
    for (char *opt = strtok_r(options, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
      m->options = cshim_xrealloc(m->options, (m->n_options + 1) * sizeof(char *));
      m->options[m->n_options++] = cshim_xstrdup(opt);
    }
  }
  return m;
}

static void
free_mount(Containerd__Types__Mount *m)
{
  free(m->type);
  free(m->source);
  free(m->target);
  for (size_t i = 0; i < m->n_options; i++)
    free(m->options[i]);
  free(m->options);
  free(m);
}

static void
print_pid(const ctl_opts_t *o, uint32_t pid)
{
  if (o->json)
    ctl_print_json(json_pack("{s:I}", "pid", (json_int_t)pid));
  else
    printf("pid %u\n", pid);
}

static int
run_create(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Runc__V1__Options ropts = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Containerd__Types__Mount *mounts[CTL_MAX_LIST];
  Containerd__Task__V2__CreateTaskResponse *resp = NULL;
  cshim_autofree uint8_t *packed = NULL;
  int ret = 0;
  size_t n = 0;

  if (o->bundle == NULL)
    return cshim_error_make(err, EINVAL, "create: --bundle DIR is required");
  for (; n < o->n_mounts; n++) {
    mounts[n] = parse_mount(o->mounts[n], err);
    if (mounts[n] == NULL) {
      ret = -EINVAL;
      break;
    }
  }
  if (ret == 0) {
    req.id = (char *)id;
    req.bundle = (char *)o->bundle;
    req.rootfs = mounts;
    req.n_rootfs = n;
    req.terminal = o->terminal;
    req.stdin = (char *)or_empty(o->stdin_);
    req.stdout = (char *)or_empty(o->stdout_);
    req.stderr = (char *)or_empty(o->stderr_);
    if (o->runtime_binary || o->runtime_root) {
      ropts.binary_name = (char *)or_empty(o->runtime_binary);
      ropts.root = (char *)or_empty(o->runtime_root);
      packed = cshim_xmalloc(protobuf_c_message_get_packed_size(&ropts.base) + 1);
      any.type_url = RUNC_OPTIONS_TYPE;
      any.value.len = protobuf_c_message_pack(&ropts.base, packed);
      any.value.data = packed;
      req.options = &any;
    }
    ret = ctl_client_call(c, "Create", &req.base,
                          &containerd__task__v2__create_task_response__descriptor,
                          (ProtobufCMessage **)&resp, err);
  }
  for (size_t i = 0; i < n; i++)
    free_mount(mounts[i]);
  if (ret < 0)
    return ret;
  print_pid(o, resp->pid);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return 0;
}

static int
run_start(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__StartResponse *resp;

  req.id = (char *)id;
  req.exec_id = (char *)or_empty(o->exec_id);
  if (ctl_client_call(c, "Start", &req.base, &containerd__task__v2__start_response__descriptor,
                      (ProtobufCMessage **)&resp, err) < 0)
    return -1;
  print_pid(o, resp->pid);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return 0;
}

static int
run_state(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__StateResponse *r;
  char when[64];

  req.id = (char *)id;
  req.exec_id = (char *)or_empty(o->exec_id);
  if (ctl_client_call(c, "State", &req.base, &containerd__task__v2__state_response__descriptor,
                      (ProtobufCMessage **)&r, err) < 0)
    return -1;
  ctl_format_time(r->exited_at, when, sizeof(when));
  if (o->json) {
    ctl_print_json(
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:b, s:I, s:s}", "id", or_empty(r->id),
                  "exec_id", or_empty(r->exec_id), "bundle", or_empty(r->bundle), "pid",
                  (json_int_t)r->pid, "status", status_name(r->status), "stdin", or_empty(r->stdin),
                  "stdout", or_empty(r->stdout), "stderr", or_empty(r->stderr), "terminal",
                  r->terminal, "exit_status", (json_int_t)r->exit_status, "exited_at", when));
  } else {
    printf("id:          %s\n", or_empty(r->id));
    if (r->exec_id && r->exec_id[0])
      printf("exec id:     %s\n", r->exec_id);
    printf("bundle:      %s\n", or_empty(r->bundle));
    printf("pid:         %u\n", r->pid);
    printf("status:      %s\n", status_name(r->status));
    printf("stdio:       stdin=%s stdout=%s stderr=%s terminal=%s\n", or_empty(r->stdin),
           or_empty(r->stdout), or_empty(r->stderr), r->terminal ? "true" : "false");
    if (r->status == CONTAINERD__V1__TYPES__STATUS__STOPPED)
      printf("exit status: %u at %s\n", r->exit_status, when);
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

/* The exec id inside a ProcessInfo's info (containerd.runc.v1.ProcessDetails), or NULL. */
static char *
process_exec_id(const Containerd__V1__Types__ProcessInfo *p)
{
  Containerd__Runc__V1__ProcessDetails *details;
  const char *type;
  char *out;

  if (p->info == NULL || p->info->type_url == NULL)
    return NULL;
  type = strrchr(p->info->type_url, '/');
  type = type ? type + 1 : p->info->type_url;
  if (strcmp(type, PROCESS_DETAILS_TYPE) != 0)
    return NULL;
  details =
      containerd__runc__v1__process_details__unpack(NULL, p->info->value.len, p->info->value.data);
  if (details == NULL)
    return NULL;
  out = cshim_xstrdup(details->exec_id);
  containerd__runc__v1__process_details__free_unpacked(details, NULL);
  return out;
}

static int
run_pids(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__PidsRequest req = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
  Containerd__Task__V2__PidsResponse *r;
  json_t *list = json_array();

  req.id = (char *)id;
  if (ctl_client_call(c, "Pids", &req.base, &containerd__task__v2__pids_response__descriptor,
                      (ProtobufCMessage **)&r, err) < 0) {
    json_decref(list);
    return -1;
  }
  if (!o->json)
    printf("%-10s %s\n", "PID", "EXEC ID");
  for (size_t i = 0; i < r->n_processes; i++) {
    cshim_autofree char *exec_id = process_exec_id(r->processes[i]);
    if (o->json)
      json_array_append_new(list, json_pack("{s:I, s:s}", "pid", (json_int_t)r->processes[i]->pid,
                                            "exec_id", or_empty(exec_id)));
    else
      printf("%-10u %s\n", r->processes[i]->pid, exec_id ? exec_id : "-");
  }
  if (o->json)
    ctl_print_json(list);
  else
    json_decref(list);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

static int
run_kill(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__KillRequest req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  ProtobufCMessage *r;
  int sig = parse_signal(o->signal);

  if (sig < 0)
    return cshim_error_make(err, EINVAL, "kill: unknown signal `%s`", o->signal);
  req.id = (char *)id;
  req.exec_id = (char *)or_empty(o->exec_id);
  req.signal = (uint32_t)sig;
  req.all = o->all;
  if (ctl_client_call(c, "Kill", &req.base, NULL, &r, err) < 0)
    return -1;
  print_ok(o);
  return 0;
}

static int
run_wait(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__WaitResponse *r;
  char when[64];

  req.id = (char *)id;
  req.exec_id = (char *)or_empty(o->exec_id);
  if (ctl_client_call(c, "Wait", &req.base, &containerd__task__v2__wait_response__descriptor,
                      (ProtobufCMessage **)&r, err) < 0)
    return -1;
  ctl_format_time(r->exited_at, when, sizeof(when));
  if (o->json)
    ctl_print_json(
        json_pack("{s:I, s:s}", "exit_status", (json_int_t)r->exit_status, "exited_at", when));
  else
    printf("exit status %u at %s\n", r->exit_status, when);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

static int
run_delete(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__DeleteRequest req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__DeleteResponse *r;
  char when[64];

  req.id = (char *)id;
  req.exec_id = (char *)or_empty(o->exec_id);
  if (ctl_client_call(c, "Delete", &req.base, &containerd__task__v2__delete_response__descriptor,
                      (ProtobufCMessage **)&r, err) < 0)
    return -1;
  ctl_format_time(r->exited_at, when, sizeof(when));
  if (o->json)
    ctl_print_json(json_pack("{s:I, s:I, s:s}", "pid", (json_int_t)r->pid, "exit_status",
                             (json_int_t)r->exit_status, "exited_at", when));
  else
    printf("pid %u exit status %u at %s\n", r->pid, r->exit_status, when);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

/* The OCI process an exec runs: args from the command line, a minimal environment. */
static char *
process_spec(const ctl_opts_t *o)
{
  json_t *args = json_array(), *env = json_array(), *process;
  char *text;

  for (size_t i = 2; i < o->n_args; i++)
    json_array_append_new(args, json_string(o->args[i]));
  if (o->n_env == 0)
    json_array_append_new(env,
                          json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/"
                                      "sbin:/bin"));
  for (size_t i = 0; i < o->n_env; i++)
    json_array_append_new(env, json_string(o->env[i]));
  process = json_pack("{s:b, s:{s:I, s:I}, s:o, s:o, s:s}", "terminal", o->terminal, "user", "uid",
                      (json_int_t)o->uid, "gid", (json_int_t)o->gid, "args", args, "env", env,
                      "cwd", o->cwd ? o->cwd : "/");
  text = json_dumps(process, JSON_COMPACT);
  json_decref(process);
  return text;
}

static int
run_exec(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__ExecProcessRequest req = CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
  Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_autofree char *text = NULL;
  ProtobufCMessage *r;

  if (o->n_args < 3)
    return cshim_error_make(err, EINVAL, "exec: usage: exec ID EXEC_ID [options] -- COMMAND...");
  text = process_spec(o);
  spec.type_url = PROCESS_SPEC_TYPE;
  spec.value.data = (uint8_t *)text;
  spec.value.len = strlen(text);
  req.id = (char *)id;
  /* exec ID EXEC_ID -- COMMAND...: the exec id is the second positional argument. */
  req.exec_id = o->args[1];
  req.terminal = o->terminal;
  req.stdin = (char *)or_empty(o->stdin_);
  req.stdout = (char *)or_empty(o->stdout_);
  req.stderr = (char *)or_empty(o->stderr_);
  req.spec = &spec;
  if (ctl_client_call(c, "Exec", &req.base, NULL, &r, err) < 0)
    return -1;
  print_ok(o);
  return 0;
}

/* A call whose request is only the task id and whose answer is Empty (Pause, Resume: their
   requests are the same message on the wire, {1: id}). */
static int
call_with_id(ctl_client_t *c, const ctl_opts_t *o, const char *method, const char *id,
             cshim_error_t *err)
{
  Containerd__Task__V2__PauseRequest req = CONTAINERD__TASK__V2__PAUSE_REQUEST__INIT;
  ProtobufCMessage *r;

  req.id = (char *)id;
  if (ctl_client_call(c, method, &req.base, NULL, &r, err) < 0)
    return -1;
  print_ok(o);
  return 0;
}

static int
run_pause(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  return call_with_id(c, o, "Pause", id, err);
}

static int
run_resume(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  return call_with_id(c, o, "Resume", id, err);
}

static int
run_stats(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__StatsRequest req = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
  Containerd__Task__V2__StatsResponse *r;
  json_t *stats = NULL;
  int ret;

  req.id = (char *)id;
  if (ctl_client_call(c, "Stats", &req.base, &containerd__task__v2__stats_response__descriptor,
                      (ProtobufCMessage **)&r, err) < 0)
    return -1;
  ret =
      ctl_stats_decode(r->stats ? r->stats->type_url : NULL, r->stats ? r->stats->value.data : NULL,
                       r->stats ? r->stats->value.len : 0, &stats, err);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  if (ret < 0)
    return ret;
  if (o->json) {
    ctl_print_json(stats);
    return 0;
  }
  ctl_stats_print(stdout, stats);
  json_decref(stats);
  return 0;
}

static int
run_connect(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  Containerd__Task__V2__ConnectResponse *r;

  req.id = (char *)or_empty(id);
  if (ctl_client_call(c, "Connect", &req.base, &containerd__task__v2__connect_response__descriptor,
                      (ProtobufCMessage **)&r, err) < 0)
    return -1;
  if (o->json)
    ctl_print_json(json_pack("{s:I, s:I, s:s}", "shim_pid", (json_int_t)r->shim_pid, "task_pid",
                             (json_int_t)r->task_pid, "version", or_empty(r->version)));
  else
    printf("shim pid %u, task pid %u%s%s\n", r->shim_pid, r->task_pid,
           r->version && r->version[0] ? ", version " : "", or_empty(r->version));
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

static int
run_shutdown(ctl_client_t *c, const ctl_opts_t *o, const char *id, cshim_error_t *err)
{
  Containerd__Task__V2__ShutdownRequest req = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
  ProtobufCMessage *r;

  req.id = (char *)or_empty(id);
  req.now = o->now;
  if (ctl_client_call(c, "Shutdown", &req.base, NULL, &r, err) < 0) {
    /* The shim may exit while answering (containerd ignores this too). */
    if (cshim_error_grpc_code(*err) == CSHIM_GRPC_UNAVAILABLE) {
      cshim_error_release(err);
      print_ok(o);
      return 0;
    }
    return -1;
  }
  print_ok(o);
  return 0;
}

static const task_cmd_t task_cmds[] = {
    {"create", "Create", run_create, true},
    {"start", "Start", run_start, true},
    {"state", "State", run_state, true},
    {"pids", "Pids", run_pids, true},
    {"kill", "Kill", run_kill, true},
    {"wait", "Wait", run_wait, true},
    {"delete", "Delete", run_delete, true},
    {"exec", "Exec", run_exec, true},
    {"pause", "Pause", run_pause, true},
    {"resume", "Resume", run_resume, true},
    {"stats", "Stats", run_stats, true},
    {"connect", "Connect", run_connect, false},
    {"shutdown", "Shutdown", run_shutdown, false},
};

int
ctl_cmd_task(const ctl_opts_t *o)
{
  const task_cmd_t *cmd = NULL;
  const char *id = o->n_args > 0 ? o->args[0] : NULL;
  ctl_client_t client;
  cshim_error_t err = NULL;
  ctl_opts_t copy = *o;
  int ret;

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(task_cmds) && !cmd; i++)
    if (strcmp(task_cmds[i].name, o->command) == 0)
      cmd = &task_cmds[i];
  if (cmd == NULL)
    return ctl_usage_error("unknown command `%s`", o->command);
  if (cmd->needs_id && (id == NULL || id[0] == '\0'))
    return ctl_usage_error("%s: a container ID is required", cmd->name);
  if (strcmp(cmd->name, "exec") != 0 && o->n_args > 1)
    return ctl_usage_error("%s: unexpected argument `%s`", cmd->name, o->args[1]);
  /* Wait lasts as long as the process: no deadline unless one was asked for. */
  if (strcmp(cmd->name, "wait") == 0 && !o->timeout_set)
    copy.timeout_ms = 0;

  if (ctl_client_open(&client, &copy, &err) < 0)
    return ctl_fail(&err);
  ret = cmd->run(&client, &copy, id, &err);
  ctl_client_close(&client);
  if (ret < 0) {
    cshim_error_wrap(&err, "%s", cmd->name);
    return ctl_fail(&err);
  }
  return 0;
}
