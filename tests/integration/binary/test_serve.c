// SPDX-License-Identifier: Apache-2.0
// The real shim binary serving the echo fixture: answers, Go-compatible rejections, the 4 MiB
// limits both ways, concurrency, many connections, with raw frames and the SDK client.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cshim/error.h>
#include <cshim/frame.h>
#include <cshim/ttrpc.h>
#include <cshim/ttrpc_client.h>

#include "echo.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "harness.h"

/* Last: cmocka defines fail(), a name <cshim/ttrpc.h> uses. */
#include <cmocka.h>

#define SERVICE "cshim.fixture.v1.Echo"
#define MAX_MSG CSHIM_FRAME_MAX_DATA

static harness_t shim;

static int
setup_shim(void **state)
{
  char yaml[4096];

  (void)state;
  snprintf(yaml, sizeof(yaml),
           "log_level: debug\n"
           "modules:\n"
           "  - %s\n" /* listed first: ordering must still init echo before it */
           "  - %s\n"
#ifdef CSHIM_TEST_SHUTDOWN_SO
           "  - " CSHIM_TEST_SHUTDOWN_SO "\n"
#endif
           "plugins:\n"
           "  io.containerd.ttrpc.v1.echo:\n"
           "    prefix: \"c:\"\n",
           CSHIM_TEST_NEEDS_ECHO_SO, CSHIM_TEST_ECHO_SO);
  harness_init(&shim, yaml);
  harness_start(&shim);
  if (!harness_wait_ready(&shim, 10000)) {
    char *log = harness_read_log(&shim);
    fprintf(stderr, "shim did not start:\n%s\n", log);
    free(log);
    harness_fini(&shim);
    return -1;
  }
  return 0;
}

static int
teardown_shim(void **state)
{
  (void)state;
  if (getenv("CSHIM_TEST_SHOW_LOG")) {
    char *log = harness_read_log(&shim);
    fprintf(stderr, "%s", log);
    free(log);
  }
  harness_fini(&shim);
  return 0;
}

static int
connect_shim(void)
{
  int fd = raw_connect(shim.sock);
  assert_true(fd >= 0);
  return fd;
}

/* Read the next response, expecting it on stream_id. */
static Ttrpc__Response *
expect_response(int fd, uint32_t stream_id)
{
  uint32_t sid = 0;
  Ttrpc__Response *resp = raw_recv_response(fd, &sid);
  assert_non_null(resp);
  assert_int_equal(sid, stream_id);
  return resp;
}

static void
expect_status(int fd, uint32_t stream_id, int code, const char *message)
{
  Ttrpc__Response *resp = expect_response(fd, stream_id);
  assert_int_equal(raw_response_code(resp), code);
  if (message)
    assert_string_equal(raw_response_message(resp), message);
  ttrpc__response__free_unpacked(resp, NULL);
}

static void
send_echo(int fd, uint32_t stream_id, const char *text, const char *ns)
{
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  req.text = (char *)text;
  assert_int_equal(raw_send_request(fd, stream_id, SERVICE, "Echo", &req.base, ns), 0);
}

/* Read an EchoResponse on stream_id and check it; text is what was sent (before the prefix). */
static void
expect_echo(int fd, uint32_t stream_id, const char *text, const char *ns)
{
  Ttrpc__Response *resp = expect_response(fd, stream_id);
  Cshim__Fixture__V1__EchoResponse *er;
  char want[256];

  assert_int_equal(raw_response_code(resp), 0);
  er = cshim__fixture__v1__echo_response__unpack(NULL, resp->payload.len, resp->payload.data);
  assert_non_null(er);
  snprintf(want, sizeof(want), "c:%s", text);
  assert_string_equal(er->text, want);
  assert_string_equal(er->namespace_, ns ? ns : "");
  cshim__fixture__v1__echo_response__free_unpacked(er, NULL);
  ttrpc__response__free_unpacked(resp, NULL);
}

static void
echo_round_trip(int fd, uint32_t stream_id, const char *text)
{
  send_echo(fd, stream_id, text, "rt");
  expect_echo(fd, stream_id, text, "rt");
}

static void
test_serve_echo_answers_text_and_namespace(void **state)
{
  int fd = connect_shim();
  (void)state;

  send_echo(fd, 1, "hello", "ns-c");
  expect_echo(fd, 1, "hello", "ns-c");
  send_echo(fd, 3, "no namespace", NULL);
  expect_echo(fd, 3, "no namespace", NULL);
  close(fd);
}

static void
test_serve_unknown_service_is_unimplemented(void **state)
{
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  int fd = connect_shim();
  (void)state;

  assert_int_equal(raw_send_request(fd, 1, "cshim.fixture.v1.Nope", "Echo", &req.base, "ns"), 0);
  expect_status(fd, 1, CSHIM_GRPC_UNIMPLEMENTED, "service cshim.fixture.v1.Nope");
  echo_round_trip(fd, 3, "still up");
  close(fd);
}

static void
test_serve_unknown_method_is_unimplemented(void **state)
{
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  int fd = connect_shim();
  (void)state;

  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Nope", &req.base, "ns"), 0);
  expect_status(fd, 1, CSHIM_GRPC_UNIMPLEMENTED, "method Nope");
  close(fd);
}

static void
test_serve_even_stream_id_is_invalid_argument(void **state)
{
  int fd = connect_shim();
  (void)state;

  send_echo(fd, 2, "even", NULL);
  expect_status(fd, 2, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams");
  echo_round_trip(fd, 3, "odd again");
  close(fd);
}

static void
test_serve_reused_stream_id_is_invalid_argument(void **state)
{
  int fd = connect_shim();
  (void)state;

  echo_round_trip(fd, 5, "five");
  send_echo(fd, 3, "three", NULL);
  expect_status(fd, 3, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID cannot be re-used and must increment");
  echo_round_trip(fd, 7, "seven");
  close(fd);
}

static void
test_serve_oversized_request_is_resource_exhausted(void **state)
{
  size_t len = MAX_MSG + 1;
  uint8_t *junk = calloc(1, len);
  int fd = connect_shim();
  (void)state;

  assert_non_null(junk);
  assert_int_equal(raw_send_frame(fd, 1, CSHIM_FRAME_REQUEST, 0, junk, len), 0);
  free(junk);
  expect_status(fd, 1, CSHIM_GRPC_RESOURCE_EXHAUSTED,
                "message length 4194305 exceed maximum message size of 4194304");
  /* The data was discarded in step: the next frame on the connection is read normally. */
  echo_round_trip(fd, 3, "after oversized");
  close(fd);
}

static void
test_serve_request_of_exactly_4mib_is_served(void **state)
{
  Cshim__Fixture__V1__EchoRequest er = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  Cshim__Fixture__V1__EchoResponse *out;
  Ttrpc__Response *resp;
  size_t text_len = MAX_MSG - 64, size = 0;
  uint8_t *payload, *frame;
  char *text;
  int fd = connect_shim();
  (void)state;

  /* Find the text length whose Request frame data is exactly the limit. */
  text = malloc(MAX_MSG + 1);
  assert_non_null(text);
  payload = malloc(MAX_MSG + 16);
  assert_non_null(payload);
  req.service = SERVICE;
  req.method = "Echo";
  for (int i = 0; i < 8; i++) {
    memset(text, 'x', text_len);
    text[text_len] = '\0';
    er.text = text;
    req.payload.len = cshim__fixture__v1__echo_request__get_packed_size(&er);
    size = ttrpc__request__get_packed_size(&req);
    if (size == MAX_MSG)
      break;
    text_len = text_len + MAX_MSG - size;
  }
  assert_int_equal(size, MAX_MSG);
  cshim__fixture__v1__echo_request__pack(&er, payload);
  req.payload.data = payload;
  frame = malloc(size);
  assert_non_null(frame);
  ttrpc__request__pack(&req, frame);
  assert_int_equal(raw_send_frame(fd, 1, CSHIM_FRAME_REQUEST, 0, frame, size), 0);
  free(frame);
  free(payload);

  resp = expect_response(fd, 1);
  assert_int_equal(raw_response_code(resp), 0);
  out = cshim__fixture__v1__echo_response__unpack(NULL, resp->payload.len, resp->payload.data);
  assert_non_null(out);
  assert_int_equal(strlen(out->text), text_len + 2);
  assert_memory_equal(out->text + 2, text, text_len);
  cshim__fixture__v1__echo_response__free_unpacked(out, NULL);
  ttrpc__response__free_unpacked(resp, NULL);
  free(text);
  close(fd);
}

static void
send_big(int fd, uint32_t stream_id, uint32_t size)
{
  Cshim__Fixture__V1__BigRequest req = CSHIM__FIXTURE__V1__BIG_REQUEST__INIT;
  req.size = size;
  assert_int_equal(raw_send_request(fd, stream_id, SERVICE, "Big", &req.base, NULL), 0);
}

static void
test_serve_answer_over_4mib_is_resource_exhausted(void **state)
{
  Cshim__Fixture__V1__BigResponse *big;
  Ttrpc__Response *resp;
  int fd = connect_shim();
  (void)state;

  send_big(fd, 1, 5u << 20);
  resp = expect_response(fd, 1);
  assert_int_equal(raw_response_code(resp), CSHIM_GRPC_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(raw_response_message(resp), "exceed maximum message size of 4194304"));
  assert_int_equal(resp->payload.len, 0);
  ttrpc__response__free_unpacked(resp, NULL);

  send_big(fd, 3, 1u << 20);
  resp = expect_response(fd, 3);
  assert_int_equal(raw_response_code(resp), 0);
  big = cshim__fixture__v1__big_response__unpack(NULL, resp->payload.len, resp->payload.data);
  assert_non_null(big);
  assert_int_equal(big->data.len, 1u << 20);
  for (size_t i = 0; i < big->data.len; i += 4099)
    assert_int_equal(big->data.data[i], i % 251);
  cshim__fixture__v1__big_response__free_unpacked(big, NULL);
  ttrpc__response__free_unpacked(resp, NULL);
  close(fd);
}

static void
test_serve_malformed_request_is_invalid_argument(void **state)
{
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  Ttrpc__Response *resp;
  int fd = connect_shim(), fd2;
  (void)state;

  assert_int_equal(raw_send_frame(fd, 1, CSHIM_FRAME_REQUEST, 0, garbage, sizeof(garbage)), 0);
  resp = expect_response(fd, 1);
  assert_int_equal(raw_response_code(resp), CSHIM_GRPC_INVALID_ARGUMENT);
  assert_true(strncmp(raw_response_message(resp), "unmarshal request error: ", 25) == 0);
  ttrpc__response__free_unpacked(resp, NULL);

  echo_round_trip(fd, 3, "same connection");
  fd2 = connect_shim();
  echo_round_trip(fd2, 1, "new connection");
  close(fd2);
  close(fd);
}

static void
test_serve_malformed_payload_is_internal(void **state)
{
  /* Field 1 announces 5 bytes and has 1. */
  static const uint8_t truncated[] = {0x0a, 0x05, 'a'};
  Ttrpc__Response *resp;
  int fd = connect_shim();
  (void)state;

  assert_int_equal(
      raw_send_request_bytes(fd, 1, SERVICE, "Echo", truncated, sizeof(truncated), NULL), 0);
  resp = expect_response(fd, 1);
  assert_int_equal(raw_response_code(resp), CSHIM_GRPC_INTERNAL);
  assert_true(strncmp(raw_response_message(resp), "ttrpc: error unmarshalling payload: ", 36) == 0);
  ttrpc__response__free_unpacked(resp, NULL);
  echo_round_trip(fd, 3, "after bad payload");
  close(fd);
}

static void
test_serve_unknown_frame_type_is_ignored(void **state)
{
  static const uint8_t data[] = {1, 2, 3};
  int fd = connect_shim();
  (void)state;

  assert_int_equal(raw_send_frame(fd, 1, 0x7f, 0, data, sizeof(data)), 0);
  assert_int_equal(raw_send_frame(fd, 3, CSHIM_FRAME_DATA, 0, data, sizeof(data)), 0);
  echo_round_trip(fd, 5, "after unknown frames");
  close(fd);
}

static void
test_serve_fail_sends_code_and_message(void **state)
{
  Cshim__Fixture__V1__FailRequest req = CSHIM__FIXTURE__V1__FAIL_REQUEST__INIT;
  Ttrpc__Response *resp;
  int fd = connect_shim();
  (void)state;

  req.code = CSHIM_GRPC_NOT_FOUND;
  req.message = "no such thing";
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Fail", &req.base, NULL), 0);
  expect_status(fd, 1, CSHIM_GRPC_NOT_FOUND, "no such thing");

  req.code = 0;
  assert_int_equal(raw_send_request(fd, 3, SERVICE, "Fail", &req.base, NULL), 0);
  resp = expect_response(fd, 3);
  /* Go's server always sends a status, an empty one for OK. */
  assert_non_null(resp->status);
  assert_int_equal(resp->status->code, 0);
  assert_int_equal(resp->payload.len, 0);
  ttrpc__response__free_unpacked(resp, NULL);
  close(fd);
}

static void
test_serve_answers_in_completion_order(void **state)
{
  Cshim__Fixture__V1__SleepRequest req = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
  int fd = connect_shim();
  (void)state;

  req.text = "slow";
  req.delay_ms = 400;
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Sleep", &req.base, "order"), 0);
  send_echo(fd, 3, "fast", "order");
  expect_echo(fd, 3, "fast", "order");
  expect_echo(fd, 1, "slow", "order");
  close(fd);
}

static void
test_serve_connection_closed_with_pending_call(void **state)
{
  Cshim__Fixture__V1__SleepRequest req = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
  int fd = connect_shim();
  (void)state;

  req.delay_ms = 100;
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Sleep", &req.base, NULL), 0);
  close(fd);
  usleep(300 * 1000); /* let the answer find the connection gone */
  fd = connect_shim();
  echo_round_trip(fd, 1, "after abandoned call");
  close(fd);
}

static void
test_serve_many_connections(void **state)
{
  enum
  {
    N = 128
  };
  int fds[N];
  char text[32];
  (void)state;

  for (int i = 0; i < N; i++)
    fds[i] = connect_shim();
  for (int i = 0; i < N; i++) {
    snprintf(text, sizeof(text), "conn %d", i);
    send_echo(fds[i], 1, text, "many");
  }
  for (int i = N - 1; i >= 0; i--) {
    snprintf(text, sizeof(text), "conn %d", i);
    expect_echo(fds[i], 1, text, "many");
    close(fds[i]);
  }
}

/* ---- the SDK client against the binary ----------------------------------------------------- */

struct sdk_run
{
  char order[64]; /* 'f' or 's' per completed call, in completion order */
  size_t n_done;
  int n_bad;
  int codes[8];
};

struct sdk_call
{
  struct sdk_run *run;
  char kind;
  char text[32];
};

static void
sdk_echo_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  struct sdk_call *c = data;
  Cshim__Fixture__V1__EchoResponse *er = (Cshim__Fixture__V1__EchoResponse *)response;
  char want[48];

  c->run->order[c->run->n_done++] = c->kind;
  snprintf(want, sizeof(want), "c:%s", c->text);
  if (*err || er == NULL || strcmp(er->text, want) != 0 || strcmp(er->namespace_, "sdk") != 0)
    c->run->n_bad++;
  if (response)
    protobuf_c_message_free_unpacked(response, NULL);
}

static void
sdk_code_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  int *code = data;
  *code = *err ? cshim_error_grpc_code(*err) : 0;
  if (response)
    protobuf_c_message_free_unpacked(response, NULL);
}

static void
test_serve_sdk_client_fast_calls_overtake_slow_ones(void **state)
{
  enum
  {
    N_SLOW = 5,
    N_FAST = 20
  };
  cshim_ttrpc_client_opts_t opts = {.timeout_ms = 10000};
  struct sdk_call calls[N_SLOW + N_FAST];
  struct sdk_run run;
  cshim_ttrpc_client_t *client = NULL;
  cshim_error_t err = NULL;
  int unimplemented = -1, not_found = -1;
  uv_loop_t loop;
  (void)state;

  memset(&run, 0, sizeof(run));
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(cshim_ttrpc_client_new(&loop, shim.sock, NULL, &client, &err), 0);
  cshim_ttrpc_client_add_metadata(client, CSHIM_TTRPC_NAMESPACE_KEY, "sdk");

  for (int i = 0; i < N_SLOW + N_FAST; i++) {
    struct sdk_call *c = &calls[i];
    c->run = &run;
    c->kind = i < N_SLOW ? 's' : 'f';
    snprintf(c->text, sizeof(c->text), "%c%d", c->kind, i);
    if (c->kind == 's') {
      Cshim__Fixture__V1__SleepRequest req = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
      req.text = c->text;
      req.delay_ms = 300;
      assert_int_equal(cshim_ttrpc_client_call(client, SERVICE, "Sleep", &req.base,
                                               &cshim__fixture__v1__echo_response__descriptor,
                                               &opts, sdk_echo_cb, c, &err),
                       0);
    } else {
      Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
      req.text = c->text;
      assert_int_equal(cshim_ttrpc_client_call(client, SERVICE, "Echo", &req.base,
                                               &cshim__fixture__v1__echo_response__descriptor,
                                               &opts, sdk_echo_cb, c, &err),
                       0);
    }
  }
  {
    Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
    Cshim__Fixture__V1__FailRequest fail = CSHIM__FIXTURE__V1__FAIL_REQUEST__INIT;
    fail.code = CSHIM_GRPC_NOT_FOUND;
    fail.message = "gone";
    assert_int_equal(cshim_ttrpc_client_call(client, SERVICE, "Nope", &req.base, NULL, &opts,
                                             sdk_code_cb, &unimplemented, &err),
                     0);
    assert_int_equal(cshim_ttrpc_client_call(client, SERVICE, "Fail", &fail.base,
                                             &google__protobuf__empty__descriptor, &opts,
                                             sdk_code_cb, &not_found, &err),
                     0);
  }

  /* The client does not keep the loop alive once nothing is pending. */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(run.n_done, N_SLOW + N_FAST);
  assert_int_equal(run.n_bad, 0);
  for (int i = 0; i < N_FAST; i++)
    assert_int_equal(run.order[i], 'f');
  assert_int_equal(unimplemented, CSHIM_GRPC_UNIMPLEMENTED);
  assert_int_equal(not_found, CSHIM_GRPC_NOT_FOUND);

  cshim_ttrpc_client_close(client, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_serve_plugins_initialised_in_dependency_order(void **state)
{
  char *log = harness_read_log(&shim);
  const char *ready, *found;
  (void)state;

  ready = strstr(log, "echo: ready with prefix `c:`");
  found = strstr(log, "needs-echo: found `io.containerd.ttrpc.v1.echo`");
  assert_non_null(ready);
  assert_non_null(found);
  assert_true(ready < found);
  free(log);
}

/* Last: after all of the above the daemon still stops cleanly (and, in a sanitizer build,
   without leaks or memory errors, which would change its exit status). */
static void
test_serve_exits_zero_after_all_that_traffic(void **state)
{
  Cshim__Fixture__V1__SleepRequest req = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
  int fd = connect_shim();
  (void)state;

  /* A call being worked on when the shim is told to stop is still answered. */
  req.text = "last";
  req.delay_ms = 300;
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Sleep", &req.base, NULL), 0);
  usleep(50 * 1000);
  assert_int_equal(kill(shim.pid, SIGTERM), 0);
  expect_echo(fd, 1, "last", NULL);
  close(fd);
  assert_true(harness_wait_exit(&shim, 9000));
  if (!WIFEXITED(shim.status) || WEXITSTATUS(shim.status) != 0) {
    char *log = harness_read_log(&shim);
    fprintf(stderr, "shim log:\n%s\n", log);
    free(log);
  }
  assert_true(WIFEXITED(shim.status));
  assert_int_equal(WEXITSTATUS(shim.status), 0);
  assert_int_not_equal(access(shim.sock, F_OK), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serve_echo_answers_text_and_namespace),
      cmocka_unit_test(test_serve_unknown_service_is_unimplemented),
      cmocka_unit_test(test_serve_unknown_method_is_unimplemented),
      cmocka_unit_test(test_serve_even_stream_id_is_invalid_argument),
      cmocka_unit_test(test_serve_reused_stream_id_is_invalid_argument),
      cmocka_unit_test(test_serve_oversized_request_is_resource_exhausted),
      cmocka_unit_test(test_serve_request_of_exactly_4mib_is_served),
      cmocka_unit_test(test_serve_answer_over_4mib_is_resource_exhausted),
      cmocka_unit_test(test_serve_malformed_request_is_invalid_argument),
      cmocka_unit_test(test_serve_malformed_payload_is_internal),
      cmocka_unit_test(test_serve_unknown_frame_type_is_ignored),
      cmocka_unit_test(test_serve_fail_sends_code_and_message),
      cmocka_unit_test(test_serve_answers_in_completion_order),
      cmocka_unit_test(test_serve_connection_closed_with_pending_call),
      cmocka_unit_test(test_serve_many_connections),
      cmocka_unit_test(test_serve_sdk_client_fast_calls_overtake_slow_ones),
      cmocka_unit_test(test_serve_plugins_initialised_in_dependency_order),
      cmocka_unit_test(test_serve_exits_zero_after_all_that_traffic),
  };
  return cmocka_run_group_tests(tests, setup_shim, teardown_shim);
}
