// SPDX-License-Identifier: Apache-2.0
// Support for the debug and cshimctl integration tests: a temporary tree, busybox bundles, child
// processes run to completion or in the background, and cleanup of everything, even on failure.
#ifndef CSHIM_ITEST_H
#define CSHIM_ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ITEST_MAX 32

typedef struct itest_s
{
  char dir[128];         /* mkdtemp'ed; removed by itest_fini */
  char ns[64];           /* a containerd namespace no one else uses */
  char runc_root[160];   /* /run/containerd/runc/<ns>: where runc keeps this test's containers */
  pid_t pids[ITEST_MAX]; /* killed (SIGKILL) by itest_fini if still the same process */
  unsigned long long starts[ITEST_MAX]; /* their start times, so a reused pid is left alone */
  size_t n_pids;
  char *paths[ITEST_MAX]; /* files outside dir to remove (sockets in /run/containerd/s) */
  size_t n_paths;
} itest_t;

/* Output of a finished child. */
typedef struct itest_result_s
{
  int status; /* wait status; -1 when it did not finish in time (it was killed) */
  char *out;  /* stdout, NUL-terminated, owned */
  char *err;  /* stderr, NUL-terminated, owned */
} itest_result_t;

/* Whether the test can run containers: root, runc and busybox. */
bool itest_can_run_containers(void);

void itest_init(itest_t *t, const char *tag);
/* Kill what was started, force-delete this namespace's runc containers, unmount anything under
   dir, remove dir and the registered paths. */
void itest_fini(itest_t *t);

/* Remember a pid (not necessarily a child) / a path to clean up. */
void itest_track_pid(itest_t *t, pid_t pid);
void itest_track_path(itest_t *t, const char *path);

/* <dir>/<name>: a bundle whose rootfs holds busybox, with runc's default spec running args
   (NULL-terminated) without a terminal. Returns the bundle path (caller frees). */
char *itest_make_bundle(itest_t *t, const char *name, const char *const *args);

/* Run argv (argv[0] a path) with extra "K=V" env entries (NULL-terminated, may be NULL) in cwd
   (NULL = ours), waiting up to timeout_ms. */
void itest_run(char *const argv[], char *const env[], const char *cwd, int timeout_ms,
               itest_result_t *r);
void itest_result_free(itest_result_t *r);
/* Whether r is a normal exit with this code. */
bool itest_exited(const itest_result_t *r, int code);

/* Start argv in the background (tracked), stdout/stderr to files (NULL = /dev/null), with
   listen_fd (>= 0) passed as fd 4. */
pid_t itest_spawn(itest_t *t, char *const argv[], char *const env[], const char *cwd,
                  const char *out_path, const char *err_path, int listen_fd);

/* Wait for path to accept connections. */
bool itest_wait_socket(const char *path, int timeout_ms);
/* Wait for a process to be gone (children are reaped). */
bool itest_wait_gone(pid_t pid, int timeout_ms);
/* Wait for a file to contain needle. */
bool itest_wait_file_contains(const char *path, const char *needle, int timeout_ms);

/* Whole file, NUL-terminated (caller frees), or NULL. */
char *itest_read_file(const char *path);

/* Send raw bytes to a Unix socket and read the answer until EOF (10 s at most). Returns the HTTP
   status (or -1) and, when response is not NULL, the whole answer (caller frees). */
int itest_http(const char *socket_path, const char *raw, size_t len, char **response);

/* The number in a Prometheus text line `<prefix> <value>` (prefix includes labels), or -1. */
double itest_metric(const char *text, const char *prefix);

#endif
