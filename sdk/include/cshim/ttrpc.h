// SPDX-License-Identifier: Apache-2.0
// The ttrpc server as plugins see it: services of protobuf-c messages, asynchronous calls,
// unary interceptors.
#ifndef CSHIM_TTRPC_H
#define CSHIM_TTRPC_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest frame payload either side may send (ttrpc's limit; exactly this size is allowed). */
#define CSHIM_TTRPC_MAX_MESSAGE (4u << 20)

/* Metadata key containerd sets on every call to name the namespace. */
#define CSHIM_TTRPC_NAMESPACE_KEY "containerd-namespace-ttrpc"

typedef struct cshim_ttrpc_call_s cshim_ttrpc_call_t;
typedef struct cshim_ttrpc_call_ops_s cshim_ttrpc_call_ops_t;
typedef struct cshim_ttrpc_server_s cshim_ttrpc_server_t;
typedef struct cshim_ttrpc_server_ops_s cshim_ttrpc_server_ops_t;

/* A request being served. Created by the server for each Request frame; the handler (or an
   interceptor) answers it exactly once, now or later, with reply or fail. After the answer the
   call object is gone: do not touch it again. If the connection closes first, answering still
   works (the answer is dropped) so a handler never has to know. The same holds once the server
   has shut down, and the server never frees an unanswered call: a plugin must answer every call
   it still holds in its close at the latest, or that call leaks. Loop thread only. */
struct cshim_ttrpc_call_s
{
  const cshim_ttrpc_call_ops_t *ops;
  const char *service; /* borrowed until answered */
  const char *method;  /* borrowed until answered */
  uint32_t stream_id;
  int64_t timeout_nano; /* from the request; 0 = none. The server does not enforce it. */
  uint64_t started_ns;  /* monotonic time the request was decoded */
  void *user_data;      /* free for the handler's use */
};

/* Made by the host, like the server's ops, and checked with them at registration. */
struct cshim_ttrpc_call_ops_s
{
  uint32_t struct_size; /* sizeof (cshim_ttrpc_call_ops_t) in the host */
  /* Answer with a message of the method's output type (borrowed for the call; NULL = an empty
     message). Returns 0, or a negative errno if the message could not be sent (the call is
     answered all the same): -ENOTCONN when the connection is gone, -EMSGSIZE when the answer
     exceeds CSHIM_TTRPC_MAX_MESSAGE (the client gets ResourceExhausted instead), -EINVAL for a
     message of another type (the client gets Internal). */
  int (*reply)(cshim_ttrpc_call_t *call, const ProtobufCMessage *response);
  /* Answer with a non-OK gRPC status and a message (copied); 0 or an unknown code goes out as
     Unknown. */
  int (*fail)(cshim_ttrpc_call_t *call, int grpc_code, const char *message);
  /* First value of a metadata key (lower case), or NULL; borrowed until answered. */
  const char *(*metadata)(const cshim_ttrpc_call_t *call, const char *key);
  /* Say that the call now waits for an event (as Wait does for an exit) rather than being
     worked on: it stops counting against its connection's limit of calls in flight, so a
     client may park any number of them (they still count against the server's memory budget).
     Answer it later as usual. Calling it twice is harmless; after the answer the call is gone
     and must not be touched, as always. */
  void (*park)(cshim_ttrpc_call_t *call);
  /* Appended in SDK 1.x. A number naming the connection the call came on, unique for the
     server's life and never 0; 0 once the connection is gone. For sharing work fairly between
     clients (a runtime limit's owner_of). */
  uint64_t (*connection)(const cshim_ttrpc_call_t *call);
  /* Appended in SDK 1.x. Ask to be told when the call's connection closes before it is
     answered: cb(call, data) then runs once, on a later loop turn, and must answer the call
     (the answer goes nowhere) and drop what refers to it. For parked calls (Wait), so that
     clients that connect, park and go away cannot pile them up. cb NULL = no longer. */
  void (*on_cancel)(cshim_ttrpc_call_t *call, void (*cb)(cshim_ttrpc_call_t *call, void *data),
                    void *data);
  /* Appended in SDK 1.x. Answer, as reply does, with a message already packed: `bytes` (len
     bytes, borrowed for the call) are the packed form of a message of type `type`, which must be
     the method's output type. For an answer a plugin keeps while nothing in it changes (State),
     so that it is not measured and packed again for every call. Same returns as reply. */
  int (*reply_packed)(cshim_ttrpc_call_t *call, const ProtobufCMessageDescriptor *type,
                      const uint8_t *bytes, size_t len);
};

static inline int
cshim_ttrpc_call_reply(cshim_ttrpc_call_t *call, const ProtobufCMessage *response)
{
  return call->ops->reply(call, response);
}

/* See the ops' reply_packed. -ENOSYS (the call is not answered) with a host older than it: the
   caller then answers with cshim_ttrpc_call_reply. */
static inline int
cshim_ttrpc_call_reply_packed(cshim_ttrpc_call_t *call, const ProtobufCMessageDescriptor *type,
                              const uint8_t *bytes, size_t len)
{
  if (CSHIM_HAS_MEMBER(call->ops, cshim_ttrpc_call_ops_t, reply_packed) && call->ops->reply_packed)
    return call->ops->reply_packed(call, type, bytes, len);
  return -ENOSYS;
}

static inline int
cshim_ttrpc_call_fail(cshim_ttrpc_call_t *call, int grpc_code, const char *message)
{
  return call->ops->fail(call, grpc_code, message);
}

/* Answer with an error object, mapped to its gRPC code; releases *err. */
static inline int
cshim_ttrpc_call_fail_error(cshim_ttrpc_call_t *call, cshim_error_t *err)
{
  int code = *err ? cshim_error_grpc_code(*err) : CSHIM_GRPC_UNKNOWN;
  int r = call->ops->fail(call, code, *err && (*err)->msg ? (*err)->msg : "unknown error");
  cshim_error_release(err);
  return r;
}

/* Park the call (see the ops' park). A host older than this member has no in-flight limit to
   leave: the call is then left as it is. */
static inline void
cshim_ttrpc_call_park(cshim_ttrpc_call_t *call)
{
  if (CSHIM_HAS_MEMBER(call->ops, cshim_ttrpc_call_ops_t, park) && call->ops->park)
    call->ops->park(call);
}

/* The call's connection (see the ops' connection); 0 with a host older than this member. */
static inline uint64_t
cshim_ttrpc_call_connection(const cshim_ttrpc_call_t *call)
{
  if (CSHIM_HAS_MEMBER(call->ops, cshim_ttrpc_call_ops_t, connection) && call->ops->connection)
    return call->ops->connection(call);
  return 0;
}

/* See the ops' on_cancel. Returns false (cb will never run) with a host older than it. */
static inline bool
cshim_ttrpc_call_on_cancel(cshim_ttrpc_call_t *call,
                           void (*cb)(cshim_ttrpc_call_t *call, void *data), void *data)
{
  if (CSHIM_HAS_MEMBER(call->ops, cshim_ttrpc_call_ops_t, on_cancel) && call->ops->on_cancel) {
    call->ops->on_cancel(call, cb, data);
    return true;
  }
  return false;
}

static inline const char *
cshim_ttrpc_call_metadata(const cshim_ttrpc_call_t *call, const char *key)
{
  return call->ops->metadata(call, key);
}

/* Handles one method. `request` is decoded with the method's input descriptor and is borrowed
   for the duration of this function only: copy what an asynchronous answer needs later. */
typedef void (*cshim_ttrpc_handler_t)(cshim_ttrpc_call_t *call, const ProtobufCMessage *request,
                                      void *service_data);

/* Fixed layout (an array element): never grows within an ABI version. */
typedef struct cshim_ttrpc_method_s
{
  const char *name;              /* rpc name as on the wire, e.g. "Create" */
  cshim_ttrpc_handler_t handler; /* NULL = answered Unimplemented */
} cshim_ttrpc_method_t;

/* A service to register. The struct, the descriptor and the method table are borrowed until the
   registering plugin's close returns (static tables are the norm). */
typedef struct cshim_ttrpc_service_s
{
  uint32_t struct_size; /* sizeof (cshim_ttrpc_service_t) in the registering plugin */
  /* Name on the wire; NULL = descriptor->name. Lets one implementation serve a wire-identical
     service under another package name (containerd.task.v3.Task). */
  const char *name;
  const ProtobufCServiceDescriptor *descriptor; /* protoc-c generated */
  const cshim_ttrpc_method_t *methods;          /* terminated by { NULL, NULL } */
  void *data;                                   /* handed to every handler */
} cshim_ttrpc_service_t;

/* A unary server interceptor. before runs in load order before the handler: return 0 to go on,
   or answer the call yourself and return 1 (later interceptors and the handler are skipped).
   after runs once the call is answered, in reverse load order, for every call whose before
   returned 0; the call is still readable there. Both optional. */
typedef struct cshim_ttrpc_interceptor_s
{
  uint32_t struct_size; /* sizeof (cshim_ttrpc_interceptor_t) in the registering plugin */
  const char *name;
  int (*before)(void *data, cshim_ttrpc_call_t *call);
  void (*after)(void *data, const cshim_ttrpc_call_t *call, int grpc_code);
  void *data;
} cshim_ttrpc_interceptor_t;

/* Counters the server keeps, for debug/metrics. The caller sets struct_size; get_stats fills
   only what fits. */
typedef struct cshim_ttrpc_stats_s
{
  uint32_t struct_size;
  uint64_t connections_open;
  uint64_t connections_total;
  uint64_t connections_rejected; /* peer credential check failed */
  uint64_t calls_in_flight;
  uint64_t calls_total;
  uint64_t frames_rejected; /* oversized, malformed, bad stream id */
} cshim_ttrpc_stats_t;

struct cshim_ttrpc_server_s
{
  const cshim_ttrpc_server_ops_t *ops;
};

struct cshim_ttrpc_server_ops_s
{
  uint32_t struct_size; /* sizeof (cshim_ttrpc_server_ops_t) in the host */
  /* Register a service (see cshim_ttrpc_service_t for lifetimes). Fails with EEXIST if the name
     is taken, EINVAL if a method name is not in the descriptor. */
  int (*register_service)(cshim_ttrpc_server_t *server, const cshim_ttrpc_service_t *service,
                          cshim_error_t *err);
  /* Add an interceptor (borrowed like a service). Interceptors chain in the order added, which
     is the plugins' load order. */
  int (*add_interceptor)(cshim_ttrpc_server_t *server, const cshim_ttrpc_interceptor_t *interceptor,
                         cshim_error_t *err);
  void (*get_stats)(cshim_ttrpc_server_t *server, cshim_ttrpc_stats_t *out);
};

/* Sizes in SDK 1.0: smaller struct_size values are refused (services and interceptors by the
   host when they are registered; the host's tables by the wrappers below). */
#define CSHIM_TTRPC_CALL_OPS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_ttrpc_call_ops_t, metadata)
#define CSHIM_TTRPC_SERVICE_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_ttrpc_service_t, data)
#define CSHIM_TTRPC_INTERCEPTOR_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_ttrpc_interceptor_t, data)
#define CSHIM_TTRPC_STATS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_ttrpc_stats_t, frames_rejected)
#define CSHIM_TTRPC_SERVER_OPS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_ttrpc_server_ops_t, get_stats)

static inline int
cshim_ttrpc_server_register(cshim_ttrpc_server_t *server, const cshim_ttrpc_service_t *service,
                            cshim_error_t *err)
{
  int ret = cshim_struct_size_check("ttrpc server", server->ops->struct_size,
                                    CSHIM_TTRPC_SERVER_OPS_SIZE_1_0, err);

  return ret < 0 ? ret : server->ops->register_service(server, service, err);
}

static inline int
cshim_ttrpc_server_add_interceptor(cshim_ttrpc_server_t *server,
                                   const cshim_ttrpc_interceptor_t *interceptor, cshim_error_t *err)
{
  int ret = cshim_struct_size_check("ttrpc server", server->ops->struct_size,
                                    CSHIM_TTRPC_SERVER_OPS_SIZE_1_0, err);

  return ret < 0 ? ret : server->ops->add_interceptor(server, interceptor, err);
}

#ifdef __cplusplus
}
#endif
#endif
