// SPDX-License-Identifier: Apache-2.0
// cshimctl: launch any containerd shim without containerd, speak the task API to its socket,
// and read cshim's debug socket. Entry point: options and command dispatch.
#define _GNU_SOURCE
#include "ctl.h"

#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#ifndef CSHIM_VERSION
#define CSHIM_VERSION "unknown"
#endif

static const char usage_text[] =
    "Usage: cshimctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Run a containerd shim without containerd (the client half of the shim contract):\n"
    "  launch   --runtime io.containerd.cshim.v2 --namespace NS --id ID --bundle DIR\n"
    "           [--address GRPC] [--ttrpc-address ADDR] [--options-file FILE] [--debug]\n"
    "           [--log FILE]\n"
    "           run `<shim> start` as containerd does; prints the shim's address. A detached\n"
    "           process reads the bundle's log FIFO into FILE (default BUNDLE/shim.log)\n"
    "           until the shim exits, as containerd would\n"
    "  teardown --runtime NAME --namespace NS --id ID --bundle DIR [--address GRPC]\n"
    "           run `<shim> delete` as containerd does after a shim is gone\n"
    "  events   --address unix:///PATH\n"
    "           serve containerd's Events/Forward on PATH (the shim's TTRPC_ADDRESS, by\n"
    "           default GRPC.ttrpc) and print each event until SIGINT/SIGTERM\n"
    "\n"
    "Task API on a shim socket (--address unix:///PATH or --socket PATH, --namespace NS):\n"
    "  create ID --bundle DIR [--stdin F] [--stdout F] [--stderr F] [--terminal]\n"
    "            [--mount TYPE:SOURCE[:OPT,...]]... [--runtime-binary B] [--runtime-root DIR]\n"
    "  start ID [--exec-id E]          state ID [--exec-id E]        pids ID\n"
    "  kill ID [--signal SIG] [--all] [--exec-id E]\n"
    "  wait ID [--exec-id E]           delete ID [--exec-id E]\n"
    "  exec ID EXEC_ID [--stdout F] [--stderr F] [--stdin F] [--terminal] [--cwd DIR]\n"
    "       [--env K=V]... [--uid N] [--gid N] -- COMMAND [ARG...]\n"
    "  pause ID    resume ID    stats ID    connect [ID]    shutdown [ID] [--now]\n"
    "\n"
    "Live upgrade of a cshim shim (--address unix:///PATH of its ttrpc socket):\n"
    "  upgrade [--binary PATH] [--timeout DUR]\n"
    "           re-execute the shim from PATH (default: its own binary as found on disk now)\n"
    "           with the same pid, connections and containers; exits 0 only when the new\n"
    "           binary runs. --timeout bounds the wait for a quiet point (default 5s)\n"
    "  upgrade --all [--state DIR] [--binary PATH] [--timeout DUR]\n"
    "           every cshim shim found in containerd's state directory (default\n"
    "           /run/containerd): one line per shim; exits 0 only when all were upgraded\n"
    "\n"
    "Any service registered on a shim socket (a vendor's own, at the task service's address,\n"
    "which containerd and launch write to <bundle>/address):\n"
    "  call SERVICE METHOD [--input FILE|-] [--hex] [--json [--descriptors LIB.so]]\n"
    "           send the request body (binary protobuf from FILE or stdin; empty when stdin\n"
    "           is a terminal) and print the response's bytes (binary, or hex with --hex).\n"
    "           --json: the body is JSON and the response is printed as JSON (proto3 JSON\n"
    "           mapping), through the descriptors cshimctl carries (containerd.task.v2/v3.Task,\n"
    "           containerd.services.events.ttrpc.v1.Events, cshim.upgrade.v1.Upgrade) or those\n"
    "           in LIB.so (a shared library built from the service's generated .pb-c.c)\n"
    "\n"
    "cshim's debug socket (--address unix:///DEBUG_SOCKET):\n"
    "  debug metrics | vars | state | profile [--seconds N] [--output FILE]\n"
    "\n"
    "Options:\n"
    "  -a, --address ADDR     shim socket (task, debug) or containerd's gRPC address (launch)\n"
    "      --socket PATH      same as --address unix://PATH\n"
    "  -n, --namespace NS     containerd namespace (default: default)\n"
    "      --task-api v2|v3   containerd.task.v2.Task (default) or containerd.task.v3.Task\n"
    "      --timeout DUR      per-call deadline, e.g. 500ms, 10s, 2m, 0 = none (default 30s;\n"
    "                         wait has none unless given)\n"
    "      --json             machine-readable output\n"
    "  -h, --help             this text\n"
    "      --version          cshimctl's version\n";

enum
{
  OPT_SOCKET = 1000,
  OPT_TASK_API,
  OPT_TIMEOUT,
  OPT_JSON,
  OPT_RUNTIME,
  OPT_BINARY,
  OPT_ID,
  OPT_BUNDLE,
  OPT_TTRPC_ADDRESS,
  OPT_PUBLISH_BINARY,
  OPT_OPTIONS_FILE,
  OPT_LOG,
  OPT_DEBUG,
  OPT_EXEC_ID,
  OPT_STDIN,
  OPT_STDOUT,
  OPT_STDERR,
  OPT_TERMINAL,
  OPT_SIGNAL,
  OPT_ALL,
  OPT_NOW,
  OPT_MOUNT,
  OPT_RUNTIME_BINARY,
  OPT_RUNTIME_ROOT,
  OPT_CWD,
  OPT_ENV,
  OPT_UID,
  OPT_GID,
  OPT_SECONDS,
  OPT_OUTPUT,
  OPT_VERSION,
  OPT_STATE,
  OPT_INPUT,
  OPT_HEX,
  OPT_DESCRIPTORS,
};

static const struct option long_options[] = {
    {"address", required_argument, NULL, 'a'},
    {"namespace", required_argument, NULL, 'n'},
    {"help", no_argument, NULL, 'h'},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"task-api", required_argument, NULL, OPT_TASK_API},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"runtime", required_argument, NULL, OPT_RUNTIME},
    {"binary", required_argument, NULL, OPT_BINARY},
    {"id", required_argument, NULL, OPT_ID},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"ttrpc-address", required_argument, NULL, OPT_TTRPC_ADDRESS},
    {"publish-binary", required_argument, NULL, OPT_PUBLISH_BINARY},
    {"options-file", required_argument, NULL, OPT_OPTIONS_FILE},
    {"log", required_argument, NULL, OPT_LOG},
    {"debug", no_argument, NULL, OPT_DEBUG},
    {"exec-id", required_argument, NULL, OPT_EXEC_ID},
    {"stdin", required_argument, NULL, OPT_STDIN},
    {"stdout", required_argument, NULL, OPT_STDOUT},
    {"stderr", required_argument, NULL, OPT_STDERR},
    {"terminal", no_argument, NULL, OPT_TERMINAL},
    {"signal", required_argument, NULL, OPT_SIGNAL},
    {"all", no_argument, NULL, OPT_ALL},
    {"now", no_argument, NULL, OPT_NOW},
    {"mount", required_argument, NULL, OPT_MOUNT},
    {"runtime-binary", required_argument, NULL, OPT_RUNTIME_BINARY},
    {"runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT},
    {"cwd", required_argument, NULL, OPT_CWD},
    {"env", required_argument, NULL, OPT_ENV},
    {"uid", required_argument, NULL, OPT_UID},
    {"gid", required_argument, NULL, OPT_GID},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"version", no_argument, NULL, OPT_VERSION},
    {"state", required_argument, NULL, OPT_STATE},
    {"input", required_argument, NULL, OPT_INPUT},
    {"hex", no_argument, NULL, OPT_HEX},
    {"descriptors", required_argument, NULL, OPT_DESCRIPTORS},
    {NULL, 0, NULL, 0},
};

/* "500ms", "10s", "2m", "0"; a bare number is seconds. -1 when malformed. */
static int64_t
parse_duration_ms(const char *s)
{
  char *end;
  unsigned long long v = strtoull(s, &end, 10);

  if (end == s || v > 86400000ull)
    return -1;
  if (*end == '\0' || strcmp(end, "s") == 0)
    return (int64_t)v * 1000;
  if (strcmp(end, "ms") == 0)
    return (int64_t)v;
  if (strcmp(end, "m") == 0)
    return (int64_t)v * 60000;
  return -1;
}

static int
parse_uint(const char *s, unsigned *out)
{
  char *end;
  unsigned long v = strtoul(s, &end, 10);

  if (end == s || *end != '\0' || v > 0xffffffffUL)
    return -1;
  *out = (unsigned)v;
  return 0;
}

/* Options that store their argument as it is, and flags that set a bool. */
static const struct
{
  int id;
  size_t offset;
} string_options[] =
    {
        {'a', offsetof(ctl_opts_t, address)},
        {OPT_SOCKET, offsetof(ctl_opts_t, address)},
        {'n', offsetof(ctl_opts_t, namespace_)},
        {OPT_RUNTIME, offsetof(ctl_opts_t, runtime)},
        {OPT_BINARY, offsetof(ctl_opts_t, binary)},
        {OPT_ID, offsetof(ctl_opts_t, id)},
        {OPT_BUNDLE, offsetof(ctl_opts_t, bundle)},
        {OPT_TTRPC_ADDRESS, offsetof(ctl_opts_t, ttrpc_address)},
        {OPT_PUBLISH_BINARY, offsetof(ctl_opts_t, publish_binary)},
        {OPT_OPTIONS_FILE, offsetof(ctl_opts_t, options_file)},
        {OPT_LOG, offsetof(ctl_opts_t, log_file)},
        {OPT_EXEC_ID, offsetof(ctl_opts_t, exec_id)},
        {OPT_STDIN, offsetof(ctl_opts_t, stdin_)},
        {OPT_STDOUT, offsetof(ctl_opts_t, stdout_)},
        {OPT_STDERR, offsetof(ctl_opts_t, stderr_)},
        {OPT_SIGNAL, offsetof(ctl_opts_t, signal)},
        {OPT_STATE, offsetof(ctl_opts_t, state_dir)},
        {OPT_RUNTIME_BINARY, offsetof(ctl_opts_t, runtime_binary)},
        {OPT_RUNTIME_ROOT, offsetof(ctl_opts_t, runtime_root)},
        {OPT_CWD, offsetof(ctl_opts_t, cwd)},
        {OPT_OUTPUT, offsetof(ctl_opts_t, output)},
        {OPT_INPUT, offsetof(ctl_opts_t, input)},
        {OPT_DESCRIPTORS, offsetof(ctl_opts_t, descriptors)},
},
  flag_options[] = {
      {OPT_JSON, offsetof(ctl_opts_t, json)},         {OPT_DEBUG, offsetof(ctl_opts_t, debug)},
      {OPT_TERMINAL, offsetof(ctl_opts_t, terminal)}, {OPT_ALL, offsetof(ctl_opts_t, all)},
      {OPT_NOW, offsetof(ctl_opts_t, now)},           {OPT_HEX, offsetof(ctl_opts_t, hex)},
};

/* An option that needs more than storing: -1 when handled and parsing goes on, else the exit
   status (0 after --help or --version, 2 on a usage error). */
static int
special_option(ctl_opts_t *o, int c, const char *arg)
{
  int64_t ms;

  switch (c) {
  case 'h':
    fputs(usage_text, stdout);
    return 0;
  case OPT_VERSION:
    printf("cshimctl %s\n", CSHIM_VERSION);
    return 0;
  case OPT_TASK_API:
    if (strcmp(arg, "v2") != 0 && strcmp(arg, "v3") != 0)
      return ctl_usage_error("--task-api: expected v2 or v3, not `%s`", arg);
    o->task_service =
        strcmp(arg, "v2") == 0 ? "containerd.task.v2.Task" : "containerd.task.v3.Task";
    return -1;
  case OPT_TIMEOUT:
    ms = parse_duration_ms(arg);
    if (ms < 0)
      return ctl_usage_error("--timeout: bad duration `%s`", arg);
    o->timeout_ms = (uint64_t)ms;
    o->timeout_set = true;
    return -1;
  case OPT_MOUNT:
    if (o->n_mounts == CTL_MAX_LIST)
      return ctl_usage_error("too many --mount options");
    o->mounts[o->n_mounts++] = arg;
    return -1;
  case OPT_ENV:
    if (o->n_env == CTL_MAX_LIST)
      return ctl_usage_error("too many --env options");
    o->env[o->n_env++] = arg;
    return -1;
  case OPT_UID:
    return parse_uint(arg, &o->uid) < 0 ? ctl_usage_error("--uid: bad number `%s`", arg) : -1;
  case OPT_GID:
    return parse_uint(arg, &o->gid) < 0 ? ctl_usage_error("--gid: bad number `%s`", arg) : -1;
  case OPT_SECONDS:
    if (parse_uint(arg, &o->seconds) < 0 || o->seconds == 0)
      return ctl_usage_error("--seconds: expected a positive number, not `%s`", arg);
    return -1;
  default:
    return ctl_usage_error("bad option");
  }
}

/* Fill *o from the command line: -1 when a command is to run, else the exit status. */
static int
parse_options(int argc, char **argv, ctl_opts_t *o)
{
  int c;

  memset(o, 0, sizeof(*o));
  o->namespace_ = "default";
  o->task_service = "containerd.task.v2.Task";
  o->timeout_ms = 30000;
  while ((c = getopt_long(argc, argv, "a:n:h", long_options, NULL)) != -1) {
    bool stored = false;
    int ret;

    for (size_t i = 0; i < CSHIM_N_ELEMENTS(string_options) && !stored; i++)
      if (string_options[i].id == c) {
        *(const char **)((char *)o + string_options[i].offset) = optarg;
        stored = true;
      }
    for (size_t i = 0; i < CSHIM_N_ELEMENTS(flag_options) && !stored; i++)
      if (flag_options[i].id == c) {
        *(bool *)((char *)o + flag_options[i].offset) = true;
        stored = true;
      }
    if (!stored && (ret = special_option(o, c, optarg)) >= 0)
      return ret;
  }
  if (optind >= argc) {
    fputs(usage_text, stderr);
    return 2;
  }
  o->command = argv[optind];
  o->args = argv + optind + 1;
  o->n_args = (size_t)(argc - optind - 1);
  return -1;
}

static const struct
{
  const char *name;
  int (*run)(const ctl_opts_t *o);
} commands[] = {
    {"launch", ctl_cmd_launch}, {"teardown", ctl_cmd_teardown}, {"debug", ctl_cmd_debug},
    {"events", ctl_cmd_events}, {"upgrade", ctl_cmd_upgrade},   {"call", ctl_cmd_call},
};

int
main(int argc, char **argv)
{
  ctl_opts_t o;
  int ret;

  /* A shim that vanishes mid-call must not kill us with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  ret = parse_options(argc, argv, &o);
  if (ret >= 0)
    return ret;
  if (strcmp(o.command, "help") == 0) {
    fputs(usage_text, stdout);
    return 0;
  }
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(commands); i++)
    if (strcmp(o.command, commands[i].name) == 0)
      return commands[i].run(&o);
  return ctl_cmd_task(&o);
}
