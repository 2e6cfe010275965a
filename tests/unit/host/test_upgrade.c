// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/upgrade.c: the new image reads the handed-over state (host record as
// documented in docs/live-upgrade.md) and refuses what it cannot read before anything starts.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cshim/state.h>
#include <cshim/util.h>

#include "flags.h"
#include "log.h"
#include "upgrade.h"

#include <cmocka.h>

/* Record numbers of the host's part of the document (host/upgrade.c; never reused). */
enum
{
  REC_HOST = 1,
  REC_FDS = 4,
  HOST_VERSION = 1,
  HOST_BINARY = 2,
  HOST_GENERATION = 3,
  HOST_SOCKET = 11,
  HOST_PREVIOUS_VERSION = 13,
};

struct fixture
{
  uv_loop_t loop;
  host_log_t log;
  int null_fd;
  host_upgrade_t *u;
  int memfd;
  char fd_text[16];
  host_flags_t flags;
};

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  char *argv[] = {"shim", "-namespace", "ns", "-upgrade-state", "9", "-id", "x", NULL};

  uv_loop_init(&f->loop);
  f->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  host_log_init(&f->log, f->null_fd, CSHIM_LOG_DEBUG, NULL);
  f->u = host_upgrade_new(&f->loop, &f->log.base, 7, argv, "/usr/bin/shim");
  f->memfd = memfd_create("test-state", MFD_CLOEXEC);
  assert_true(f->memfd >= 0);
  snprintf(f->fd_text, sizeof f->fd_text, "%d", f->memfd);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  host_upgrade_free(f->u);
  close(f->memfd);
  close(f->null_fd);
  uv_loop_close(&f->loop);
  free(f);
  return 0;
}

static void
put_doc(struct fixture *f, const uint8_t *doc, size_t len)
{
  assert_int_equal(ftruncate(f->memfd, 0), 0);
  assert_int_equal(pwrite(f->memfd, doc, len, 0), (ssize_t)len);
  f->flags.upgrade_state = f->fd_text;
}

static void
test_upgrade_normal_start_reads_nothing(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;

  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), 0);
  assert_false(host_upgrade_restoring(f->u));
}

static void
test_upgrade_refuses_a_state_fd_that_is_not_open(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;

  f->flags.upgrade_state = "999999";
  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), -EBADF);
  assert_non_null(strstr(err->msg, "-upgrade-state `999999`"));
  cshim_error_release(&err);
  f->flags.upgrade_state = "3x";
  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), -EBADF);
  cshim_error_release(&err);
}

/* Without the previous image's binary there is nowhere to hand back to: the error comes back. */
static void
test_upgrade_refuses_garbage_before_anything_starts(void **state)
{
  struct fixture *f = *state;
  static const uint8_t garbage[64] = "definitely not a state document";
  cshim_error_t err = NULL;

  put_doc(f, garbage, sizeof garbage);
  assert_true(host_upgrade_load(f->u, &f->flags, &err) < 0);
  assert_non_null(strstr(err->msg, "cannot read the handed-over state"));
  assert_non_null(strstr(err->msg, "not a cshim state document"));
  cshim_error_release(&err);
}

static void
test_upgrade_refuses_a_later_format(void **state)
{
  struct fixture *f = *state;
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  size_t len;

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, REC_HOST);
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  doc[8] = CSHIM_STATE_FORMAT_VERSION + 1; /* the CRC covers the body only */
  put_doc(f, doc, len);
  assert_true(host_upgrade_load(f->u, &f->flags, &err) < 0);
  assert_non_null(strstr(err->msg, "is not supported"));
  cshim_error_release(&err);
}

/* The host record written by hand from its documented tags: what every later release reads. */
static void
test_upgrade_reads_the_host_record(void **state)
{
  struct fixture *f = *state;
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  host_upgrade_stats_t st;
  size_t len;

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, REC_HOST);
  cshim_state_put_str(&w, HOST_VERSION, "0.0.9");
  cshim_state_put_str(&w, HOST_BINARY, "/old/shim");
  cshim_state_put_u64(&w, HOST_GENERATION, 4);
  cshim_state_put_str(&w, HOST_SOCKET, "/run/containerd/s/abc");
  cshim_state_put_str(&w, HOST_PREVIOUS_VERSION, "0.0.8");
  cshim_state_put_u32(&w, 999, 1); /* a record of a later release: skipped */
  cshim_state_end(&w);
  cshim_state_begin(&w, REC_FDS);
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  put_doc(f, doc, len);

  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), 1);
  assert_null(err);
  assert_true(host_upgrade_restoring(f->u));
  assert_string_equal(host_upgrade_socket_path(f->u), "/run/containerd/s/abc");
  assert_null(host_upgrade_debug_fd(f->u));
  host_upgrade_stats(f->u, &st);
  assert_int_equal(st.generation, 4);
  assert_string_equal(st.previous_version, "0.0.8");
}

/* After a crash the journal follows the document; a journal cut short or lying about a length
   (the handler died writing it) is read up to its last whole entry, never past the memfd. */
static void
test_upgrade_reads_a_crash_journal_cut_short(void **state)
{
  struct fixture *f = *state;
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL, *all = NULL;
  cshim_error_t err = NULL;
  host_upgrade_stats_t st;
  size_t len;
  /* J_EXIT pid 7 status 0; J_CALL fd 5 stream 3 with a 2-byte request; then an entry claiming
     4096 bytes of which 3 exist */
  static const uint8_t journal[] = {
      2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0,  0, 0,                  /* exit */
      1, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 2, 0,  0, 0, 0x0a, 0x00,      /* call */
      3, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 'a',  'b',  'c', /* input, cut */
  };

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, REC_HOST);
  cshim_state_put_str(&w, HOST_VERSION, "0.1.0");
  cshim_state_end(&w);
  cshim_state_begin(&w, REC_FDS);
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  all = cshim_xmalloc(len + sizeof journal);
  memcpy(all, doc, len);
  memcpy(all + len, journal, sizeof journal);
  put_doc(f, all, len + sizeof journal);
  f->flags.upgrade_crash = "11,1,100";

  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), 1);
  assert_null(err);
  assert_true(host_upgrade_restoring(f->u));
  host_upgrade_stats(f->u, &st);
  assert_int_equal(st.crash_restarts, 0); /* counted once the restore has finished */
}

/* A crash document (a snapshot and its journal) in the memfd, as the handler leaves it. */
static size_t
put_crash_doc(struct fixture *f)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL, *all = NULL;
  cshim_error_t err = NULL;
  size_t len;
  /* J_EXIT pid 7 status 0, then J_END */
  static const uint8_t journal[] = {
      2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* exit */
      4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* end */
  };

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, REC_HOST);
  cshim_state_put_str(&w, HOST_VERSION, "0.1.0");
  cshim_state_end(&w);
  cshim_state_begin(&w, REC_FDS);
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  all = cshim_xmalloc(len + sizeof journal);
  memcpy(all, doc, len);
  memcpy(all + len, journal, sizeof journal);
  put_doc(f, all, len + sizeof journal);
  return len + sizeof journal;
}

/* A crash restore that fails hands back to the same binary (the "previous image"): that image
   gets the document with its journal after it and must read it as a crash document, not refuse
   it ("body of N bytes announced, M present"). */
static void
test_upgrade_hand_back_after_a_crash_reads_the_journal(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char **argv = NULL;
  cshim_error_t err = NULL;
  host_flags_t flags2;
  host_upgrade_t *u2;
  char exe_text[16], bufs[2][16];
  int exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC), argc = 0;

  assert_true(exe_fd >= 0);
  snprintf(exe_text, sizeof exe_text, "%d", exe_fd);
  put_crash_doc(f);
  f->flags.upgrade_exe = exe_text;
  f->flags.upgrade_crash = "11,1,100";
  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), 1);

  argv = host_upgrade_rollback_argv(f->u, "restore `task`: it failed", bufs);
  while (argv[argc])
    argc++;
  memset(&flags2, 0, sizeof flags2);
  if (host_flags_parse(argc, argv, &flags2, &err) < 0)
    fail_msg("hand-back command line: %s", err->msg);
  assert_non_null(flags2.upgrade_rollback);
  assert_string_equal(flags2.upgrade_state, f->fd_text);

  u2 = host_upgrade_new(&f->loop, &f->log.base, argc, argv, "/usr/bin/shim");
  if (host_upgrade_load(u2, &flags2, &err) != 1)
    fail_msg("the image handed back to refuses the crash document: %s", err ? err->msg : "?");
  assert_true(host_upgrade_restoring(u2));
  /* and it is the same crash restart (counted once, bounded the same) */
  assert_non_null(flags2.upgrade_crash);
  assert_string_equal(flags2.upgrade_crash, "11,1,100");
  host_upgrade_free(u2);
  close(exe_fd);
}

/* Descriptors given up while the state is being restored stay open (a hand-back needs them as
   they were); outside a restore and without a crash guard they are closed at once. */
static void
test_upgrade_descriptors_given_up_while_restoring_stay_open(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  int p[2];

  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  host_upgrade_close_fd(f->u, p[0]); /* a normal start, no guard: closed now */
  assert_true(fcntl(p[0], F_GETFD) < 0);
  close(p[1]);

  put_crash_doc(f);
  f->flags.upgrade_crash = "11,1,100";
  assert_int_equal(host_upgrade_load(f->u, &f->flags, &err), 1);
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  host_upgrade_close_fd(f->u, p[0]);
  host_upgrade_close_fd(f->u, p[0]); /* twice: closed once */
  assert_true(fcntl(p[0], F_GETFD) >= 0);
  host_upgrade_free(f->u); /* gives them up for good */
  f->u = NULL;
  assert_true(fcntl(p[0], F_GETFD) < 0);
  close(p[1]);
}

static void
test_upgrade_refuses_a_document_without_host_record(void **state)
{
  struct fixture *f = *state;
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  size_t len;

  cshim_state_writer_init(&w);
  cshim_state_put_u32(&w, 77, 1);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  put_doc(f, doc, len);
  assert_true(host_upgrade_load(f->u, &f->flags, &err) < 0);
  assert_non_null(strstr(err->msg, "record 1 missing"));
  cshim_error_release(&err);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_upgrade_normal_start_reads_nothing),
      T(test_upgrade_refuses_a_state_fd_that_is_not_open),
      T(test_upgrade_refuses_garbage_before_anything_starts),
      T(test_upgrade_refuses_a_later_format),
      T(test_upgrade_reads_the_host_record),
      T(test_upgrade_refuses_a_document_without_host_record),
      T(test_upgrade_reads_a_crash_journal_cut_short),
      T(test_upgrade_hand_back_after_a_crash_reads_the_journal),
      T(test_upgrade_descriptors_given_up_while_restoring_stay_open),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
