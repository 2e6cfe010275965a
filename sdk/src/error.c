// SPDX-License-Identifier: Apache-2.0
// Error objects and the single errno -> gRPC status code mapping.
#define _GNU_SOURCE
#include <cshim/error.h>
#include <cshim/util.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int
make_v(cshim_error_t *err, int errnum, int grpc_code, const char *suffix, const char *fmt,
       va_list ap)
{
  struct cshim_error_s *e;
  char *msg = NULL;

  if (errnum > 0)
    errnum = -errnum;
  if (errnum == 0)
    errnum = -EIO;

  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  if (suffix) {
    char *full;
    cshim_xasprintf(&full, "%s: %s", msg, suffix);
    free(msg);
    msg = full;
  }

  if (err == NULL) {
    free(msg);
    return errnum;
  }
  cshim_error_release(err);
  e = cshim_xmalloc0(sizeof *e);
  e->status = errnum;
  e->grpc_code = grpc_code;
  e->msg = msg;
  *err = e;
  return errnum;
}

int
cshim_error_make(cshim_error_t *err, int errnum, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = make_v(err, errnum, 0, NULL, fmt, ap);
  va_end(ap);
  return r;
}

int
cshim_error_sys(cshim_error_t *err, int errnum, const char *fmt, ...)
{
  va_list ap;
  int r;
  int e = errnum < 0 ? -errnum : errnum;
  va_start(ap, fmt);
  r = make_v(err, errnum, 0, strerror(e), fmt, ap);
  va_end(ap);
  return r;
}

int
cshim_error_from_uv(cshim_error_t *err, int uv_err, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start(ap, fmt);
  /* On Unix libuv error codes are negative errno values. */
  r = make_v(err, uv_err, 0, uv_strerror(uv_err), fmt, ap);
  va_end(ap);
  return r;
}

static int
grpc_to_errno(int code)
{
  switch (code) {
  case CSHIM_GRPC_CANCELED:
    return ECANCELED;
  case CSHIM_GRPC_INVALID_ARGUMENT:
    return EINVAL;
  case CSHIM_GRPC_DEADLINE_EXCEEDED:
    return ETIMEDOUT;
  case CSHIM_GRPC_NOT_FOUND:
    return ENOENT;
  case CSHIM_GRPC_ALREADY_EXISTS:
    return EEXIST;
  case CSHIM_GRPC_PERMISSION_DENIED:
    return EPERM;
  case CSHIM_GRPC_RESOURCE_EXHAUSTED:
    return EMSGSIZE;
  case CSHIM_GRPC_FAILED_PRECONDITION:
    return EBUSY;
  case CSHIM_GRPC_UNIMPLEMENTED:
    return ENOSYS;
  case CSHIM_GRPC_UNAVAILABLE:
    return ECONNREFUSED;
  default:
    return EIO;
  }
}

int
cshim_error_make_code(cshim_error_t *err, int grpc_code, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = make_v(err, grpc_to_errno(grpc_code), grpc_code, NULL, fmt, ap);
  va_end(ap);
  return r;
}

int
cshim_error_wrap(cshim_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *ctx = NULL;
  char *full;

  if (err == NULL)
    return -EIO;
  va_start(ap, fmt);
  if (vasprintf(&ctx, fmt, ap) < 0)
    abort();
  va_end(ap);

  if (*err == NULL) {
    struct cshim_error_s *e = cshim_xmalloc0(sizeof *e);
    e->status = -EIO;
    e->msg = ctx;
    *err = e;
    return e->status;
  }
  cshim_xasprintf(&full, "%s: %s", ctx, (*err)->msg ? (*err)->msg : "");
  free(ctx);
  free((*err)->msg);
  (*err)->msg = full;
  return (*err)->status;
}

void
cshim_error_release(cshim_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

int
cshim_errno_to_grpc(int errnum)
{
  if (errnum < 0)
    errnum = -errnum;
  switch (errnum) {
  case 0:
    return CSHIM_GRPC_OK;
  case ENOENT:
  case ESRCH:
    return CSHIM_GRPC_NOT_FOUND;
  case EEXIST:
    return CSHIM_GRPC_ALREADY_EXISTS;
  case EINVAL:
  case EBADMSG:
  case ENAMETOOLONG:
    return CSHIM_GRPC_INVALID_ARGUMENT;
  case ENOTSUP:
  case ENOSYS:
    return CSHIM_GRPC_UNIMPLEMENTED;
  case EBUSY:
  case ENOTEMPTY:
    return CSHIM_GRPC_FAILED_PRECONDITION;
  case ETIMEDOUT:
    return CSHIM_GRPC_DEADLINE_EXCEEDED;
  case EPERM:
  case EACCES:
    return CSHIM_GRPC_PERMISSION_DENIED;
  case ECANCELED:
    return CSHIM_GRPC_CANCELED;
  case EMSGSIZE:
  case ENOSPC:
  case EMFILE:
  case ENFILE:
    return CSHIM_GRPC_RESOURCE_EXHAUSTED;
  case ERANGE:
    return CSHIM_GRPC_OUT_OF_RANGE;
  case ECONNREFUSED:
  case ENOTCONN:
  case ECONNRESET:
  case EAGAIN:
    return CSHIM_GRPC_UNAVAILABLE;
  case EALREADY:
    return CSHIM_GRPC_FAILED_PRECONDITION;
  default:
    return CSHIM_GRPC_UNKNOWN;
  }
}

int
cshim_error_grpc_code(const struct cshim_error_s *e)
{
  if (e == NULL)
    return CSHIM_GRPC_OK;
  if (e->grpc_code)
    return e->grpc_code;
  return cshim_errno_to_grpc(e->status);
}

const char *
cshim_grpc_code_name(int code)
{
  static const char *const names[] = {
      "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated",
  };
  if (code < 0 || (size_t)code >= CSHIM_N_ELEMENTS(names))
    return "Unknown";
  return names[code];
}
