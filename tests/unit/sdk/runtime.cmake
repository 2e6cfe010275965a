# SPDX-License-Identifier: Apache-2.0
# Tests of cshim_spawn and the OCI runtime wrapper (fake runtime, plus real runc/crun as root).
pkg_check_modules (JANSSON REQUIRED IMPORTED_TARGET jansson)

if (NOT TARGET cshim_fake_runtime)
  add_subdirectory (${PROJECT_SOURCE_DIR}/tests/fixtures/fake-runtime
                    ${PROJECT_BINARY_DIR}/tests/fixtures/fake-runtime)
endif ()

# The host's reaper is compiled in directly: the tests need a real SIGCHLD owner, not the
# whole host library.
cshim_add_unit_test (test_sdk_spawn
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_spawn.c ${PROJECT_SOURCE_DIR}/host/reaper.c
  LIBS cshim_sdk)
target_include_directories (test_sdk_spawn PRIVATE ${PROJECT_SOURCE_DIR}/host)

cshim_add_unit_test (test_sdk_runtime
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_runtime.c ${PROJECT_SOURCE_DIR}/host/reaper.c
  LIBS cshim_sdk PkgConfig::JANSSON
  DEFINITIONS FAKE_RUNTIME="$<TARGET_FILE:cshim_fake_runtime>")
target_include_directories (test_sdk_runtime PRIVATE ${PROJECT_SOURCE_DIR}/host)
add_dependencies (test_sdk_runtime cshim_fake_runtime)
set_tests_properties (test_sdk_runtime PROPERTIES TIMEOUT 300)
