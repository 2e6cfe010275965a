// SPDX-License-Identifier: Apache-2.0
// Live upgrade: the plugin's busy, save and restore hooks.
#ifndef TASK_UPGRADE_H
#define TASK_UPGRADE_H

#include <cshim/error.h>
#include <cshim/state.h>

/* The plugin's hooks (task.c puts them in its descriptor). */
const char *task_upgrade_busy(void *instance);
int task_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err);
int task_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err);

#endif
