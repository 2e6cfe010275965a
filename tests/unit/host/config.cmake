# SPDX-License-Identifier: Apache-2.0
# Unit test of host/config.c: parsing, validation messages and the config resolution order.
cshim_add_unit_test (test_host_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config.c
  LIBS cshim_host_lib cshim_sdk PkgConfig::YAML)
