# SPDX-License-Identifier: Apache-2.0
# Unit tests of cshimctl's protobuf <-> JSON mapping and its cgroup stats decoder.
if (TARGET cshimctl_lib)
  cshim_add_unit_test (test_cshimctl_pbjson SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pbjson.c
                       LIBS cshimctl_lib)
  cshim_add_unit_test (test_cshimctl_stats SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stats.c
                       LIBS cshimctl_lib)
endif ()
