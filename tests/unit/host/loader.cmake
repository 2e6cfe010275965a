# SPDX-License-Identifier: Apache-2.0
# Unit tests of the plugin registry, loader and plugin set (included from tests/unit).
set (_cshim_loader_tests_dir ${CMAKE_CURRENT_LIST_DIR})

cshim_add_unit_test (test_registry
  SOURCES ${_cshim_loader_tests_dir}/test_registry.c
  LIBS cshim_host_lib cshim_sdk ${CMAKE_DL_LIBS})

foreach (unit loader plugins)
  if (EXISTS ${_cshim_loader_tests_dir}/test_${unit}.c)
    cshim_add_unit_test (test_${unit}
      SOURCES ${_cshim_loader_tests_dir}/test_${unit}.c
      LIBS cshim_host_lib cshim_sdk ${CMAKE_DL_LIBS}
      DEFINITIONS CSHIM_FIXTURE_PLUGIN_DIR="$<TARGET_FILE_DIR:fx_shutdown>")
    add_dependencies (test_${unit} cshim_fixture_plugins)
  endif ()
endforeach ()
