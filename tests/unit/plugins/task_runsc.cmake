# SPDX-License-Identifier: Apache-2.0
# Unit tests of the task plugin's runsc stats (`runsc events --stats` JSON to cgroups Metrics),
# with the recorded JSON in tests/fixtures/runsc (included from tests/unit).
cshim_add_unit_test (test_task_runsc_stats
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/task/test_runsc_stats.c
  LIBS cshim_task_core cshim_host_lib
  DEFINITIONS RUNSC_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures/runsc")
target_include_directories (test_task_runsc_stats PRIVATE ${CMAKE_CURRENT_LIST_DIR}/task)
