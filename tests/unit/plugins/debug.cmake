# SPDX-License-Identifier: Apache-2.0
# Unit tests of the debug plugin (its sources compiled in with mock_host.c and a fake host
# interface) and of the task plugin's state source for it.
if (TARGET debug)
  cshim_add_unit_test (test_plugin_debug
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/debug/test_debug.c
            ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
            ${CSHIM_DEBUG_SOURCES}
    LIBS cshim_sdk cshim_proto cshim_debug_deps ${CSHIM_PROFILER_LIBRARY})
  target_include_directories (test_plugin_debug PRIVATE ${CMAKE_CURRENT_LIST_DIR}
                              ${PROJECT_SOURCE_DIR}/plugins/debug)
  set_tests_properties (test_plugin_debug PROPERTIES TIMEOUT 120)

  cshim_add_unit_test (test_plugin_debug_metrics
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/debug/test_metrics.c
            ${PROJECT_SOURCE_DIR}/plugins/debug/metrics.c
    LIBS cshim_sdk cshim_debug_deps)
  target_include_directories (test_plugin_debug_metrics PRIVATE
                              ${PROJECT_SOURCE_DIR}/plugins/debug)
endif ()

if (TARGET cshim_task_core)
  cshim_add_unit_test (test_task_debug_state
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/task/test_debug_state.c
    LIBS cshim_task_core cshim_host_lib)
endif ()
