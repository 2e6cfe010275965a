# SPDX-License-Identifier: Apache-2.0
# Unit test of sdk/src/config.c: the typed accessors plugins use on their config section.
cshim_add_unit_test (test_sdk_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config.c
  LIBS cshim_sdk)
