// SPDX-License-Identifier: Apache-2.0
// The task plugin's type names, shared by every part so that headers need not include each other.
#ifndef TASK_TYPES_H
#define TASK_TYPES_H

typedef struct task_service_s task_service_t;
typedef struct task_container_s task_container_t;
typedef struct task_process_s task_process_t;
typedef struct task_op_s task_op_t;
typedef struct task_io_s task_io_t;
typedef struct task_cgroup_s task_cgroup_t;
typedef struct task_oom_s task_oom_t;
typedef struct task_runtime_path_s task_runtime_path_t;
typedef struct task_events_s task_events_t;

#endif
