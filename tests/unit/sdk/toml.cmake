# SPDX-License-Identifier: Apache-2.0
# Unit tests of the strict TOML reader (runtime options config_body).
cshim_add_unit_test (test_toml
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_toml.c
  LIBS cshim_sdk)
