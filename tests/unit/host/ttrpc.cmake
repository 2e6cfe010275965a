# SPDX-License-Identifier: Apache-2.0
# Unit test of host/ttrpc_server.c over real Unix sockets, with the Echo fixture service.
cshim_add_unit_test (test_host_ttrpc_server
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ttrpc_server.c
  LIBS cshim_host_lib cshim_sdk cshim_fixture_proto)
# host/ttrpc_request.c: the Request envelope decoder against protobuf-c's unpacker.
cshim_add_unit_test (test_host_ttrpc_request
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ttrpc_request.c
  LIBS cshim_host_lib cshim_sdk)
