# SPDX-License-Identifier: Apache-2.0
# Unit test of sdk/src/state.c: the live-upgrade state format.
cshim_add_unit_test (test_sdk_state SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_state.c LIBS cshim_sdk)
