# SPDX-License-Identifier: Apache-2.0
# Unit tests of the task plugin's exec processes, terminals and logging binaries (included from
# tests/unit after task.cmake): the fake runc's exec and console socket, and a test logging binary.
set (_task_tests ${CMAKE_CURRENT_LIST_DIR}/task)

add_executable (cshim_fixture_logger ${CMAKE_CURRENT_LIST_DIR}/../../fixtures/logger/logger.c)
set_target_properties (cshim_fixture_logger PROPERTIES OUTPUT_NAME test-logger)
target_compile_options (cshim_fixture_logger PRIVATE ${CSHIM_WARNINGS})

foreach (t exec console logger)
  if (EXISTS ${_task_tests}/test_${t}.c)
    cshim_add_unit_test (test_task_${t}
      SOURCES ${_task_tests}/test_${t}.c ${_task_tests}/fixture.c ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
              ${PROJECT_SOURCE_DIR}/plugins/task/task.c
      LIBS cshim_task_core cshim_host_lib cshim_proto
      DEFINITIONS FAKE_RUNC_PATH="$<TARGET_FILE:cshim_task_fake_runc>"
                  LOGGER_PATH="$<TARGET_FILE:cshim_fixture_logger>")
    target_include_directories (test_task_${t} PRIVATE ${_task_tests} ${CMAKE_CURRENT_LIST_DIR})
    add_dependencies (test_task_${t} cshim_task_fake_runc cshim_fixture_logger)
  endif ()
endforeach ()
