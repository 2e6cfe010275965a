// SPDX-License-Identifier: Apache-2.0
// Error objects: the last parameter of every fallible cshim function (crun style).
#ifndef CSHIM_ERROR_H
#define CSHIM_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes (google.rpc.Code), as carried in ttrpc responses. */
enum cshim_grpc_code
{
  CSHIM_GRPC_OK = 0,
  CSHIM_GRPC_CANCELED = 1,
  CSHIM_GRPC_UNKNOWN = 2,
  CSHIM_GRPC_INVALID_ARGUMENT = 3,
  CSHIM_GRPC_DEADLINE_EXCEEDED = 4,
  CSHIM_GRPC_NOT_FOUND = 5,
  CSHIM_GRPC_ALREADY_EXISTS = 6,
  CSHIM_GRPC_PERMISSION_DENIED = 7,
  CSHIM_GRPC_RESOURCE_EXHAUSTED = 8,
  CSHIM_GRPC_FAILED_PRECONDITION = 9,
  CSHIM_GRPC_ABORTED = 10,
  CSHIM_GRPC_OUT_OF_RANGE = 11,
  CSHIM_GRPC_UNIMPLEMENTED = 12,
  CSHIM_GRPC_INTERNAL = 13,
  CSHIM_GRPC_UNAVAILABLE = 14,
  CSHIM_GRPC_DATA_LOSS = 15,
  CSHIM_GRPC_UNAUTHENTICATED = 16,
};

/* An error: a class (negative errno) and a message. Created by the cshim_error_* constructors,
   owned by whoever holds the cshim_error_t, released with cshim_error_release. */
struct cshim_error_s
{
  int status;    /* negative errno: the class, mapped to a gRPC code at the edge */
  int grpc_code; /* 0 = derive from status; otherwise the exact code to send */
  char *msg;     /* owned; "outer: inner: innermost" after wrapping */
};
typedef struct cshim_error_s *cshim_error_t;

/* Set *err to a new error of class errnum (positive or negative errno) with a formatted
   message. Returns the negative errno so callers can `return cshim_error_make (...)`.
   *err must be NULL on entry (an existing error is released first, with no loss of memory). */
int cshim_error_make(cshim_error_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like cshim_error_make, and appends ": strerror(errnum)". */
int cshim_error_sys(cshim_error_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like cshim_error_make for a libuv error code, and appends ": uv_strerror(uv_err)". */
int cshim_error_from_uv(cshim_error_t *err, int uv_err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Make an error that goes out with an exact gRPC code (and class EIO unless the code maps
   back to an errno). Returns the negative errno. */
int cshim_error_make_code(cshim_error_t *err, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix context to an existing error ("context: old message"). Returns its status.
   If *err is NULL (a caller bug), makes an EIO error with just the context. */
int cshim_error_wrap(cshim_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Release an error and set *err to NULL. NULL-safe. */
void cshim_error_release(cshim_error_t *err);

/* The one errno -> gRPC code mapping (ENOENT->NotFound, EEXIST->AlreadyExists, ...).
   Accepts positive or negative errno; 0 -> OK; unknown -> Unknown. */
int cshim_errno_to_grpc(int errnum);

/* The gRPC code an error goes out with. */
int cshim_error_grpc_code(const struct cshim_error_s *e);

/* Human name of a gRPC code ("NotFound"), static. */
const char *cshim_grpc_code_name(int code);

#ifdef __cplusplus
}
#endif
#endif
