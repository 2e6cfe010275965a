# SPDX-License-Identifier: Apache-2.0
# Unit tests of the host's own core: flags, reaper, memory.
cshim_add_unit_test (test_host_flags SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_flags.c LIBS cshim_host_lib)
cshim_add_unit_test (test_host_reaper SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_reaper.c LIBS cshim_host_lib)
cshim_add_unit_test (test_host_memory SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_memory.c LIBS cshim_host_lib)
