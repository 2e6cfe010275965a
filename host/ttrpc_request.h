// SPDX-License-Identifier: Apache-2.0
// The ttrpc Request envelope, decoded without protobuf-c's generic unpacker.
#ifndef HOST_TTRPC_REQUEST_H
#define HOST_TTRPC_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ttrpc/request.pb-c.h"

/* Decode the bytes of a ttrpc Request frame into a Ttrpc__Request that is, field for field, what
   ttrpc__request__unpack(allocator, len, data) makes of them, and NULL exactly when that fails
   (a malformed field, a known field with the wrong wire type, a group): the server's envelope
   is decoded for every call, and protobuf-c's descriptor-driven unpack of it was a third of a
   State call's instructions. Everything is allocated through `allocator` (NULL: protobuf-c's
   default) as protobuf-c lays it out, so ttrpc__request__free_unpacked and
   ttrpc__request__pack work on the result as on protobuf-c's. Unlike protobuf-c it keeps no
   unknown fields: they are skipped (nothing reads them; a re-pack leaves them out).
   tests/fuzz/fuzz_ttrpc_request compares the two on arbitrary input. */
Ttrpc__Request *host_ttrpc_request_decode(ProtobufCAllocator *allocator, size_t len,
                                          const uint8_t *data);

/* Whether every field of messages of `desc` is a proto3 string outside any oneof (whose default
   is the empty string): the input of most task API calls (State, Connect, Pids, Stats, Wait, Start,
   Delete: id and exec_id). Such messages host_ttrpc_unpack_strings decodes. */
bool host_ttrpc_strings_only(const ProtobufCMessageDescriptor *desc);

/* Decode a message of a descriptor for which host_ttrpc_strings_only holds, as
   protobuf_c_message_unpack(desc, allocator, len, data) does: NULL exactly when it fails, the
   same strings otherwise (the last of a repeated field), allocated through `allocator` as
   protobuf-c lays them out, so protobuf_c_message_free_unpacked frees the result. Unknown fields
   are skipped, not kept. For a State call this was ~400 instructions of protobuf-c's generic
   unpacker and a third of the code lines it runs. */
ProtobufCMessage *host_ttrpc_unpack_strings(const ProtobufCMessageDescriptor *desc,
                                            ProtobufCAllocator *allocator, size_t len,
                                            const uint8_t *data);

#endif
