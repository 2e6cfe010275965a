// SPDX-License-Identifier: Apache-2.0
// Small helpers every module uses: aborting allocation, cleanup attributes, ownership steal.
#ifndef CSHIM_UTIL_H
#define CSHIM_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Allocation that aborts on out-of-memory: callers never check for NULL. */
void *cshim_xmalloc(size_t size);
void *cshim_xmalloc0(size_t size);
void *cshim_xrealloc(void *ptr, size_t size);
char *cshim_xstrdup(const char *s); /* NULL -> NULL */
char *cshim_xstrndup(const char *s, size_t n);
void *cshim_xmemdup(const void *p, size_t n);
int cshim_xasprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A large buffer (I/O, reads) in pages of its own, aborting on out-of-memory: only the pages
   written count as the process's memory, and cshim_xunmap gives every page back. Inside the heap
   such a buffer keeps whatever pages it reuses resident and pins the heap around it. */
void *cshim_xmap(size_t size);
void cshim_xunmap(void *p, size_t size); /* NULL is ignored; size as given to cshim_xmap */

void cshim_cleanup_freep(void *p);
void cshim_cleanup_closep(int *fd);

#define cshim_autofree __attribute__((cleanup(cshim_cleanup_freep)))
#define cshim_autoclose __attribute__((cleanup(cshim_cleanup_closep)))

/* Take ownership out of a cleanup_* local: returns the pointer and leaves NULL behind. */
static inline void *
cshim_steal_pointer(void *pp)
{
  void **p = (void **)pp;
  void *r = *p;
  *p = NULL;
  return r;
}

static inline int
cshim_steal_fd(int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

#define CSHIM_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define CSHIM_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Evaluate a system call again while it fails with EINTR; the value is its last result (errno
   as it left it). E.g. n = CSHIM_RETRY_EINTR (read (fd, buf, len)); */
#define CSHIM_RETRY_EINTR(expr)                                                                    \
  __extension__({                                                                                  \
    __typeof__(expr) cshim_retry_r_;                                                               \
    do                                                                                             \
      cshim_retry_r_ = (expr);                                                                     \
    while (cshim_retry_r_ == -1 && errno == EINTR);                                                \
    cshim_retry_r_;                                                                                \
  })

/* The value of a hexadecimal digit ('0'-'9', 'a'-'f', 'A'-'F'), -1 for any other character. */
static inline int
cshim_hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Monotonic clock in nanoseconds. */
uint64_t cshim_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
