// SPDX-License-Identifier: Apache-2.0
// The task plugin's test fixture: the host mock with a real reaper and a recording publisher,
// and the service made through the plugin's descriptor.
#define _GNU_SOURCE
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/plugin.h>
#include <cshim/util.h>

#include "handlers.h"
#include "reaper.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

const cshim_plugin_t *cshim_plugin_entry(void);

static const char *const task_requires[] = {CSHIM_TYPE_EVENT, CSHIM_TYPE_INTERNAL, NULL};

static int
publish(cshim_publisher_t *self, const char *topic, const ProtobufCMessage *event,
        cshim_error_t *err)
{
  task_mock_t *m = CSHIM_CONTAINER_OF(self, task_mock_t, publisher);
  task_mock_event_t *e;
  assert_true(m->n_events < TASK_MOCK_MAX_EVENTS);
  e = &m->events[m->n_events++];
  e->topic = cshim_xstrdup(topic);
  e->desc = event->descriptor;
  e->len = protobuf_c_message_get_packed_size(event);
  e->data = cshim_xmalloc(e->len + 1);
  protobuf_c_message_pack(event, e->data);
  if (m->host.echo)
    fprintf(stderr, "event %s\n", topic);
  return 0;
}

void
task_mock_init(task_mock_t *m)
{
  cshim_error_t err = NULL;
  host_reaper_t *r = NULL;

  memset(m, 0, sizeof *m);
  mock_host_init(&m->host, "io.containerd.ttrpc.v1.task", task_requires);
  if (host_reaper_new(&m->host.loop, &m->host.logger, &r, &err) < 0)
    fail_msg("reaper: %s", err->msg);
  m->reaper_host = r;
  m->reaper = host_reaper_api(r);
  m->host.ctx.reaper = m->reaper;
  m->publisher.struct_size = sizeof m->publisher;
  m->publisher.publish = publish;
  mock_host_add_instance(&m->host, CSHIM_TYPE_EVENT, "publisher", &m->publisher);
  mock_host_set_property(&m->host, CSHIM_PROP_NAMESPACE, "testns");
}

void
task_mock_fini(task_mock_t *m)
{
  host_reaper_close(m->reaper_host);
  uv_run(&m->host.loop, UV_RUN_DEFAULT);
  mock_host_fini(&m->host);
  for (size_t i = 0; i < m->n_events; i++) {
    free(m->events[i].topic);
    free(m->events[i].data);
  }
}

int
task_mock_find_event(const task_mock_t *m, const char *topic, size_t from)
{
  for (size_t i = from; i < m->n_events; i++)
    if (strcmp(m->events[i].topic, topic) == 0)
      return (int)i;
  return -1;
}

ProtobufCMessage *
task_mock_unpack_event(const task_mock_t *m, size_t i)
{
  assert_true(i < m->n_events);
  return protobuf_c_message_unpack(m->events[i].desc, NULL, m->events[i].len, m->events[i].data);
}

mock_call_t *
task_call_new(const char *method)
{
  return mock_call_new("containerd.task.v2.Task", method);
}

task_service_t *
task_fixture_open_service(task_mock_t *m)
{
  const cshim_plugin_t *desc = cshim_plugin_entry();
  cshim_error_t err = NULL;
  void *instance = NULL;

  assert_int_equal(desc->abi_version, CSHIM_PLUGIN_ABI_VERSION);
  assert_string_equal(desc->id, "task");
  if (desc->init(&m->host.ctx, &instance, &err) < 0)
    fail_msg("task init: %s", err->msg);
  assert_non_null(instance);
  return instance;
}

void
task_fixture_close_service(task_service_t *svc)
{
  cshim_plugin_entry()->close(svc);
}

void
task_fixture_write_spec(task_fixture_t *f, const char *args_json, bool pid_ns)
{
  char path[600];
  FILE *fp;
  snprintf(path, sizeof path, "%s/config.json", f->bundle);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fprintf(fp,
          "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":%s},\"linux\":{\"namespaces\":[%s]}}",
          args_json, pid_ns ? "{\"type\":\"pid\"},{\"type\":\"mount\"}" : "{\"type\":\"mount\"}");
  fclose(fp);
}

task_fixture_t *
task_fixture_new(const char *name, const char *fake_runc, const char *args_json)
{
  task_fixture_t *f = cshim_xmalloc0(sizeof *f);
  char rootfs[600];

  task_mock_init(&f->m);
  snprintf(f->base, sizeof f->base, "/tmp/cshim-%s-XXXXXX", name);
  assert_non_null(mkdtemp(f->base));
  snprintf(f->bundle, sizeof f->bundle, "%s/bundle", f->base);
  snprintf(f->root, sizeof f->root, "%s/root", f->base);
  snprintf(f->argv_log, sizeof f->argv_log, "%s/argv.log", f->base);
  snprintf(f->in_path, sizeof f->in_path, "%s/stdin", f->base);
  snprintf(f->out_path, sizeof f->out_path, "%s/stdout", f->base);
  snprintf(f->err_path, sizeof f->err_path, "%s/stderr", f->base);
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", f->bundle);
  assert_int_equal(mkdir(f->bundle, 0700), 0);
  assert_int_equal(mkdir(rootfs, 0700), 0);
  task_fixture_write_spec(f, args_json, true);
  f->out_fd = f->err_fd = -1;

  mock_host_set_config(&f->m.host, "runtime", fake_runc);
  mock_host_set_config(&f->m.host, "runtime_root", f->root);
  mock_host_set_config(&f->m.host, "command_timeout", "20s");
  f->svc = task_fixture_open_service(&f->m);
  return f;
}

void
task_fixture_reopen_service(task_fixture_t *f)
{
  task_fixture_close_service(f->svc);
  mock_host_run_for(&f->m.host, 10);
  f->svc = task_fixture_open_service(&f->m);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  if (flag == FTW_DP || flag == FTW_D)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static void
kill_pids_in(const char *path)
{
  FILE *fp = fopen(path, "r");
  int pid;
  while (fp && fscanf(fp, "%d", &pid) == 1)
    if (pid > 0) {
      kill(pid, SIGCONT);
      kill(pid, SIGKILL);
    }
  if (fp)
    fclose(fp);
}

/* Any process the test left: the fake runtime keeps pids in <root>/testns/<id>/{pid,exec.pids}. */
static void
kill_leftovers(task_fixture_t *f)
{
  char dir[600];
  struct dirent *e;
  DIR *d;
  snprintf(dir, sizeof dir, "%s/testns", f->root);
  d = opendir(dir);
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char path[1200];
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s/pid", dir, e->d_name);
    kill_pids_in(path);
    snprintf(path, sizeof path, "%s/%s/exec.pids", dir, e->d_name);
    kill_pids_in(path);
  }
  closedir(d);
}

void
task_fixture_free(task_fixture_t *f)
{
  char rootfs[600];
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", f->bundle);
  kill_leftovers(f);
  if (f->svc)
    task_fixture_close_service(f->svc);
  mock_host_run_for(&f->m.host, 50);
  task_mock_fini(&f->m);
  umount2(rootfs, MNT_DETACH);
  if (f->out_fd >= 0)
    close(f->out_fd);
  if (f->err_fd >= 0)
    close(f->err_fd);
  nftw(f->base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f->out);
  free(f);
}

const cshim_ttrpc_method_t *
task_fixture_method(const char *name)
{
  for (const cshim_ttrpc_method_t *m = task_methods; m->name; m++)
    if (strcmp(m->name, name) == 0)
      return m;
  fail_msg("no method %s", name);
  return NULL;
}

mock_call_t *
task_fixture_invoke(task_fixture_t *f, const char *name, const ProtobufCMessage *req)
{
  mock_call_t *c = task_call_new(name);
  const cshim_ttrpc_method_t *m = NULL;

  /* Through the table the service registers (the traced one when a tracer was found). */
  for (const cshim_ttrpc_method_t *t = f->svc->service_v2.methods; t->name && m == NULL; t++)
    if (strcmp(t->name, name) == 0)
      m = t;
  if (m == NULL)
    fail_msg("no method %s", name);
  assert_non_null(m->handler);
  m->handler(&c->base, req, f->svc);
  return c;
}

mock_call_t *
task_fixture_call(task_fixture_t *f, const char *name, const ProtobufCMessage *req)
{
  mock_call_t *c = task_fixture_invoke(f, name, req);
  if (!mock_host_run_call(&f->m.host, c, TASK_FIXTURE_TIMEOUT_MS))
    fail_msg("%s not answered", name);
  assert_int_equal(c->answered, 1);
  return c;
}

void
task_fixture_drain(task_fixture_t *f)
{
  char buf[65536];
  ssize_t n;
  if (f->out_fd >= 0)
    while ((n = read(f->out_fd, buf, sizeof buf)) > 0) {
      f->out = cshim_xrealloc(f->out, f->out_len + (size_t)n + 1);
      memcpy(f->out + f->out_len, buf, (size_t)n);
      f->out_len += (size_t)n;
      f->out[f->out_len] = '\0';
    }
  if (f->err_fd >= 0)
    while ((n = read(f->err_fd, buf, sizeof buf)) > 0)
      f->err_len += (size_t)n;
}

struct drain_until
{
  task_fixture_t *f;
  mock_call_t *c;
};

static bool
drain_pred(void *data)
{
  struct drain_until *d = data;
  task_fixture_drain(d->f);
  return d->c->answered > 0;
}

bool
task_fixture_run_draining(task_fixture_t *f, mock_call_t *c, uint64_t timeout_ms)
{
  struct drain_until d = {f, c};
  return mock_host_run_until(&f->m.host, drain_pred, &d, timeout_ms);
}

mock_call_t *
task_fixture_call_draining(task_fixture_t *f, const char *name, const ProtobufCMessage *req)
{
  struct drain_until d = {f, task_fixture_invoke(f, name, req)};
  if (!mock_host_run_until(&f->m.host, drain_pred, &d, TASK_FIXTURE_TIMEOUT_MS))
    fail_msg("%s not answered", name);
  task_fixture_drain(f);
  assert_int_equal(d.c->answered, 1);
  return d.c;
}

void
task_fixture_expect_code(mock_call_t *c, int code)
{
  if (c->code != code)
    fail_msg("%s: code %d (%s), want %d", c->base.method, c->code, c->message ? c->message : "",
             code);
  mock_call_free(c);
}
