# SPDX-License-Identifier: Apache-2.0
# Unit tests of the SDK core helpers (errors, log format).
cshim_add_unit_test (test_sdk_error SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_error.c LIBS cshim_sdk)
cshim_add_unit_test (test_sdk_log SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_log.c LIBS cshim_sdk)
cshim_add_unit_test (test_sdk_version SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_version.c
                     LIBS cshim_sdk)
cshim_add_unit_test (test_sdk_unix_socket SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_unix_socket.c
                     LIBS cshim_sdk)
cshim_add_unit_test (test_sdk_list SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_list.c LIBS cshim_sdk)
