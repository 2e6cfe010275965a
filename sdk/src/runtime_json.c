// SPDX-License-Identifier: Apache-2.0
// Parsers of the runtime's outputs: `state` and `ps --format json` JSON, and pid files.
#include <cshim/runtime.h>
#include <cshim/util.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
cshim_runtime_parse_state(const char *json, cshim_runtime_state_t *out, cshim_error_t *err)
{
  json_error_t jerr;
  json_t *root, *status, *pid, *bundle;
  int ret = 0;

  if (json == NULL || out == NULL)
    return cshim_error_make(err, EINVAL, "parse runtime state: no input");
  root = json_loads(json, 0, &jerr);
  if (root == NULL)
    return cshim_error_make(err, EINVAL, "parse runtime state: %s", jerr.text);
  memset(out, 0, sizeof *out);
  status = json_object_get(root, "status");
  pid = json_object_get(root, "pid");
  bundle = json_object_get(root, "bundle");
  if (!json_is_object(root) || !json_is_string(status))
    ret = cshim_error_make(err, EINVAL, "parse runtime state: no `status`");
  else if (pid && !json_is_null(pid) &&
           (!json_is_integer(pid) || json_integer_value(pid) < -1 ||
            json_integer_value(pid) > INT_MAX))
    ret = cshim_error_make(err, EINVAL, "parse runtime state: invalid `pid`");
  else if (bundle && !json_is_null(bundle) && !json_is_string(bundle))
    ret = cshim_error_make(err, EINVAL, "parse runtime state: invalid `bundle`");
  else if (json_string_length(status) >= sizeof out->status)
    ret = cshim_error_make(err, EINVAL, "parse runtime state: unknown status `%s`",
                           json_string_value(status));
  else if (bundle && json_string_length(bundle) >= sizeof out->bundle)
    ret = cshim_error_make(err, ENAMETOOLONG, "parse runtime state: `bundle` too long");
  else {
    snprintf(out->status, sizeof out->status, "%s", json_string_value(status));
    /* runsc says -1 for a container with no process (stopped): no pid, as runc's 0 */
    out->pid = pid && json_integer_value(pid) > 0 ? (pid_t)json_integer_value(pid) : 0;
    if (json_is_string(bundle))
      snprintf(out->bundle, sizeof out->bundle, "%s", json_string_value(bundle));
  }
  json_decref(root);
  return ret;
}

int
cshim_runtime_parse_ps(const char *json, pid_t **pids, size_t *n, cshim_error_t *err)
{
  json_error_t jerr;
  json_t *root;
  pid_t *list = NULL;
  size_t count;

  if (json == NULL || pids == NULL || n == NULL)
    return cshim_error_make(err, EINVAL, "parse runtime ps: no input");
  root = json_loads(json, JSON_DECODE_ANY, &jerr);
  if (root == NULL)
    return cshim_error_make(err, EINVAL, "parse runtime ps: %s", jerr.text);
  if (json_is_null(root)) /* runc prints `null` for a container without processes */
  {
    json_decref(root);
    *pids = NULL;
    *n = 0;
    return 0;
  }
  if (!json_is_array(root)) {
    json_decref(root);
    return cshim_error_make(err, EINVAL, "parse runtime ps: not an array");
  }
  count = json_array_size(root);
  list = cshim_xmalloc0((count ? count : 1) * sizeof *list);
  for (size_t i = 0; i < count; i++) {
    json_t *v = json_array_get(root, i);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX) {
      free(list);
      json_decref(root);
      return cshim_error_make(err, EINVAL, "parse runtime ps: invalid pid at index %zu", i);
    }
    list[i] = (pid_t)json_integer_value(v);
  }
  json_decref(root);
  *pids = list;
  *n = count;
  return 0;
}

int
cshim_read_pid_file(const char *path, pid_t *pid, cshim_error_t *err)
{
  cshim_autoclose int fd = -1;
  char buf[32], *start, *end;
  size_t len = 0;
  long v;

  if (path == NULL || pid == NULL)
    return cshim_error_make(err, EINVAL, "read pid file: no path");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "read pid file `%s`", path);
  while (len < sizeof buf - 1) {
    ssize_t r = CSHIM_RETRY_EINTR(read(fd, buf + len, sizeof buf - 1 - len));
    if (r < 0)
      return cshim_error_sys(err, errno, "read pid file `%s`", path);
    if (r == 0)
      break;
    len += (size_t)r;
  }
  buf[len] = '\0';
  start = buf;
  while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
    start++;
  errno = 0;
  v = strtol(start, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
    end++;
  if (end == start || *end != '\0' || errno != 0 || v <= 0 || v > INT_MAX)
    return cshim_error_make(err, EINVAL, "read pid file `%s`: invalid content `%s`", path, buf);
  *pid = (pid_t)v;
  return 0;
}
