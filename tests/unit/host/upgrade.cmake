# SPDX-License-Identifier: Apache-2.0
# Unit test of host/upgrade.c: what the new image accepts from the old one.
cshim_add_unit_test (test_host_upgrade SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_upgrade.c
                     LIBS cshim_host_lib)
