# SPDX-License-Identifier: Apache-2.0
# Unit tests of the tracing plugin: its pure parts (span.c), and the plugin through its
# descriptor against the mock host (tracing.c and export.c compiled in).
if (TARGET cshim_tracing_core)
  cshim_add_unit_test (test_plugin_tracing_span
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tracing/test_span.c
    LIBS cshim_tracing_core)

  cshim_add_unit_test (test_plugin_tracing
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tracing/test_tracing.c
            ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
            ${PROJECT_SOURCE_DIR}/plugins/tracing/export.c
    LIBS cshim_tracing_deps)
  target_include_directories (test_plugin_tracing PRIVATE ${CMAKE_CURRENT_LIST_DIR}
                              ${PROJECT_SOURCE_DIR}/plugins/tracing)
endif ()
