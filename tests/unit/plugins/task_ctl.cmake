# SPDX-License-Identifier: Apache-2.0
# Unit tests of the task plugin's Pause/Resume/Update, Stats (cgroup files), OOM and
# checkpoint/restore parts (included from tests/unit after task.cmake, whose fake runc they use).
set (_task_ctl_tests ${CMAKE_CURRENT_LIST_DIR}/task)

foreach (t cgroups oom control)
  if (EXISTS ${_task_ctl_tests}/test_${t}.c)
    cshim_add_unit_test (test_task_${t}
      SOURCES ${_task_ctl_tests}/test_${t}.c ${_task_ctl_tests}/fixture.c ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
              ${PROJECT_SOURCE_DIR}/plugins/task/task.c
      LIBS cshim_task_core cshim_host_lib cshim_proto
      DEFINITIONS FAKE_RUNC_PATH="$<TARGET_FILE:cshim_task_fake_runc>"
                  CGROUP_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures/cgroups")
    target_include_directories (test_task_${t} PRIVATE ${_task_ctl_tests} ${CMAKE_CURRENT_LIST_DIR})
    add_dependencies (test_task_${t} cshim_task_fake_runc)
  endif ()
endforeach ()
