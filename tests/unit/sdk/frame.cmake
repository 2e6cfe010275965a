# SPDX-License-Identifier: Apache-2.0
# Unit test of sdk/src/frame.c: the ttrpc header codec and the incremental frame reader.
cshim_add_unit_test (test_sdk_frame
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_frame.c
  LIBS cshim_sdk cshim_proto)
