# SPDX-License-Identifier: Apache-2.0
# Unit test of sdk/src/file.c: small-file reads and atomic replacement.
cshim_add_unit_test (test_sdk_file SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_file.c LIBS cshim_sdk)
