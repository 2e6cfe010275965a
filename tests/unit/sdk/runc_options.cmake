# SPDX-License-Identifier: Apache-2.0
# Unit tests of the runc options helpers (options.json / runtime files, Any decoding).
cshim_add_unit_test (test_runc_options
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_runc_options.c
  LIBS cshim_sdk cshim_proto)
