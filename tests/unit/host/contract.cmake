# SPDX-License-Identifier: Apache-2.0
# Unit tests of the shim binary contract: host/address.c, options.c, start.c, delete.c, info.c.
cshim_add_unit_test (test_host_address
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_address.c
  LIBS cshim_host_lib)
cshim_add_unit_test (test_host_options
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_options.c
  LIBS cshim_host_lib)
cshim_add_unit_test (test_host_start
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_start.c
  LIBS cshim_host_lib
  DEFINITIONS CSHIM_FIXTURE_PLUGIN_DIR="$<TARGET_FILE_DIR:fx_shutdown>")
add_dependencies (test_host_start cshim_fixture_plugins)
cshim_add_unit_test (test_host_delete
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_delete.c
  LIBS cshim_host_lib)
cshim_add_unit_test (test_host_info
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_info.c
  LIBS cshim_host_lib)
cshim_add_unit_test (test_host_bootstrap
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bootstrap.c
  LIBS cshim_host_lib)
