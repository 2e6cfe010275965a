// SPDX-License-Identifier: Apache-2.0
// The shutdown service interface (io.containerd.internal.v1 "shutdown" instance starts with it).
#ifndef CSHIM_SHUTDOWN_H
#define CSHIM_SHUTDOWN_H

#include <stdbool.h>

#include <stdint.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cshim_shutdown_s cshim_shutdown_t;
typedef struct cshim_shutdown_done_s cshim_shutdown_done_t;

/* Handed to a shutdown callback: call complete exactly once, now or later. err may be NULL. */
struct cshim_shutdown_done_s
{
  uint32_t struct_size; /* sizeof (cshim_shutdown_done_t) in the shutdown plugin */
  void (*complete)(cshim_shutdown_done_t *self, cshim_error_t *err);
};

/* A shutdown callback: begins its work and calls done->complete when finished. */
typedef void (*cshim_shutdown_cb)(void *data, cshim_shutdown_done_t *done);
/* Told once shutdown has finished (every callback completed or the timeout passed). */
typedef void (*cshim_shutdown_done_cb)(void *data);

/* An io.containerd.internal.v1 "shutdown" instance begins with this struct (embedded first):
   take it with cshim_shutdown_from_instance. */
struct cshim_shutdown_s
{
  uint32_t struct_size; /* sizeof (cshim_shutdown_t) in the implementing plugin */
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

/* Sizes in SDK 1.0: smaller struct_size values are refused. */
#define CSHIM_SHUTDOWN_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_shutdown_t, is_shutting_down)
#define CSHIM_SHUTDOWN_DONE_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_shutdown_done_t, complete)

/* The shutdown service at the start of a looked-up instance, after checking its struct_size:
   0 and *out set, or -EINVAL naming the reason. */
static inline int
cshim_shutdown_from_instance(void *instance, cshim_shutdown_t **out, cshim_error_t *err)
{
  cshim_shutdown_t *s = (cshim_shutdown_t *)instance;
  int ret =
      cshim_struct_size_check("shutdown service", s->struct_size, CSHIM_SHUTDOWN_SIZE_1_0, err);

  if (ret < 0)
    return ret;
  *out = s;
  return 0;
}

#ifdef __cplusplus
}
#endif
#endif
