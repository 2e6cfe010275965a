# SPDX-License-Identifier: Apache-2.0
# Unit tests of the shutdown and publisher plugins: the plugin sources are compiled into each
# test together with mock_host.c (a fake init context and a fake containerd Events service).
set (CSHIM_PLUGINS_SRC ${PROJECT_SOURCE_DIR}/plugins)

cshim_add_unit_test (test_plugin_shutdown
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/shutdown/test_shutdown.c
          ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
          ${CSHIM_PLUGINS_SRC}/shutdown/shutdown.c
  LIBS cshim_sdk cshim_proto)
target_include_directories (test_plugin_shutdown PRIVATE ${CMAKE_CURRENT_LIST_DIR})

cshim_add_unit_test (test_plugin_publisher_queue
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/publisher/test_queue.c
          ${CSHIM_PLUGINS_SRC}/publisher/queue.c
  LIBS cshim_sdk)
target_include_directories (test_plugin_publisher_queue PRIVATE ${CSHIM_PLUGINS_SRC}/publisher)

cshim_add_unit_test (test_plugin_publisher
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/publisher/test_publisher.c
          ${CMAKE_CURRENT_LIST_DIR}/mock_host.c
          ${CSHIM_PLUGINS_SRC}/publisher/publisher.c
          ${CSHIM_PLUGINS_SRC}/publisher/queue.c
  LIBS cshim_sdk cshim_proto)
target_include_directories (test_plugin_publisher PRIVATE ${CMAKE_CURRENT_LIST_DIR}
                            ${CSHIM_PLUGINS_SRC}/publisher)
