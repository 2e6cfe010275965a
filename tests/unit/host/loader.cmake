# SPDX-License-Identifier: Apache-2.0
# Unit tests of the plugin registry, loader and plugin set (included from tests/unit).
set (_cshim_loader_tests_dir ${CMAKE_CURRENT_LIST_DIR})

cshim_add_unit_test (test_registry
  SOURCES ${_cshim_loader_tests_dir}/test_registry.c
  LIBS cshim_host_lib cshim_sdk ${CMAKE_DL_LIBS})
