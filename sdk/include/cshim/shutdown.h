// SPDX-License-Identifier: Apache-2.0
// The shutdown service interface (io.containerd.internal.v1 "shutdown" instance starts with it).
#ifndef CSHIM_SHUTDOWN_H
#define CSHIM_SHUTDOWN_H

#include <stdbool.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cshim_shutdown_s cshim_shutdown_t;
typedef struct cshim_shutdown_done_s cshim_shutdown_done_t;

/* Handed to a shutdown callback: call complete exactly once, now or later. err may be NULL. */
struct cshim_shutdown_done_s
{
  void (*complete)(cshim_shutdown_done_t *self, cshim_error_t *err);
};

/* A shutdown callback: begins its work and calls done->complete when finished. */
typedef void (*cshim_shutdown_cb)(void *data, cshim_shutdown_done_t *done);
/* Told once shutdown has finished (every callback completed or the timeout passed). */
typedef void (*cshim_shutdown_done_cb)(void *data);

struct cshim_shutdown_s
{
  /* Register a callback for the first shutdown. Callbacks registered after shutdown began never
     run (EALREADY). */
  int (*register_callback)(cshim_shutdown_t *self, cshim_shutdown_cb cb, void *data,
                           cshim_error_t *err);
  /* Start shutting down: idempotent. All callbacks run at once, under a shared timeout. */
  void (*shutdown)(cshim_shutdown_t *self);
  /* Be told when shutdown is done (at once, on the next loop iteration, if it already is). */
  int (*on_done)(cshim_shutdown_t *self, cshim_shutdown_done_cb cb, void *data, cshim_error_t *err);
  bool (*is_shutting_down)(cshim_shutdown_t *self);
};

#ifdef __cplusplus
}
#endif
#endif
