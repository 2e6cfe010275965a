// SPDX-License-Identifier: Apache-2.0
// Aborting allocators, cleanup helpers and the monotonic clock shared by every module.
#define _GNU_SOURCE
#include <cshim/util.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static void __attribute__((noreturn)) oom(void)
{
  static const char msg[] = "cshim: out of memory\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  abort();
}

void *
cshim_xmalloc(size_t size)
{
  void *p = malloc(size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

void *
cshim_xmap(size_t size)
{
  void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    oom();
  return p;
}

void
cshim_xunmap(void *p, size_t size)
{
  if (p)
    munmap(p, size ? size : 1);
}

void *
cshim_xmalloc0(size_t size)
{
  void *p = calloc(1, size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

void *
cshim_xrealloc(void *ptr, size_t size)
{
  void *p = realloc(ptr, size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

char *
cshim_xstrdup(const char *s)
{
  char *r;
  if (s == NULL)
    return NULL;
  r = strdup(s);
  if (r == NULL)
    oom();
  return r;
}

char *
cshim_xstrndup(const char *s, size_t n)
{
  char *r = strndup(s, n);
  if (r == NULL)
    oom();
  return r;
}

void *
cshim_xmemdup(const void *p, size_t n)
{
  void *r = cshim_xmalloc(n);
  if (n)
    memcpy(r, p, n);
  return r;
}

int
cshim_xasprintf(char **out, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = vasprintf(out, fmt, ap);
  va_end(ap);
  if (r < 0)
    oom();
  return r;
}

void
cshim_cleanup_freep(void *p)
{
  void **pp = (void **)p;
  free(*pp);
  *pp = NULL;
}

void
cshim_cleanup_closep(int *fd)
{
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
  *fd = -1;
}

uint64_t
cshim_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
