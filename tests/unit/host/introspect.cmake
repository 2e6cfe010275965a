# SPDX-License-Identifier: Apache-2.0
# Unit test of host/introspect.c (what plugins see of the host; the SIGUSR1 dump).
cshim_add_unit_test (test_host_introspect
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_introspect.c
  LIBS cshim_host_lib
  DEFINITIONS CSHIM_TEST_ECHO_SO="$<TARGET_FILE:fixture_echo>")
add_dependencies (test_host_introspect fixture_echo)
