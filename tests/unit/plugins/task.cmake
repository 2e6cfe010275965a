# SPDX-License-Identifier: Apache-2.0
# Unit tests of the task plugin (included from tests/unit): pure parts, stdio copies on a real
# loop, and the service driven end to end with a fake runc and the host's real reaper.
set (_task_tests ${CMAKE_CURRENT_LIST_DIR}/task)
if (NOT TARGET PkgConfig::JANSSON)
  pkg_check_modules (JANSSON REQUIRED IMPORTED_TARGET jansson)
endif ()

add_executable (cshim_task_fake_runc ${_task_tests}/fake_runc.c)
set_target_properties (cshim_task_fake_runc PROPERTIES OUTPUT_NAME fake-runc)
target_compile_options (cshim_task_fake_runc PRIVATE ${CSHIM_WARNINGS})
target_link_libraries (cshim_task_fake_runc PRIVATE PkgConfig::JANSSON)

foreach (t options mount container io service op upgrade)
  if (EXISTS ${_task_tests}/test_${t}.c)
    cshim_add_unit_test (test_task_${t}
      SOURCES ${_task_tests}/test_${t}.c ${_task_tests}/fixture.c ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
              ${PROJECT_SOURCE_DIR}/plugins/task/task.c
      LIBS cshim_task_core cshim_host_lib cshim_proto
      DEFINITIONS FAKE_RUNC_PATH="$<TARGET_FILE:cshim_task_fake_runc>")
    target_include_directories (test_task_${t} PRIVATE ${_task_tests} ${CMAKE_CURRENT_LIST_DIR})
    add_dependencies (test_task_${t} cshim_task_fake_runc)
  endif ()
endforeach ()

# No include circle among the plugin's parts (X.c and X.h are part X).
cshim_add_unit_test (test_task_include_graph
  SOURCES ${_task_tests}/test_include_graph.c
  LIBS cshim_sdk
  DEFINITIONS TASK_SOURCE_DIR="${PROJECT_SOURCE_DIR}/plugins/task")
