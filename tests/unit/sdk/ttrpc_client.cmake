# SPDX-License-Identifier: Apache-2.0
# Unit test of sdk/src/ttrpc_client.c against a scripted raw ttrpc server on a Unix socket.
cshim_add_unit_test (test_sdk_ttrpc_client
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ttrpc_client.c
  LIBS cshim_sdk cshim_proto)
