// SPDX-License-Identifier: Apache-2.0
#ifndef HOST_MEMORY_H
#define HOST_MEMORY_H

/* Malloc settings for a long-lived daemon with a small heap. Called first thing in the daemon. */
void host_memory_init(void);

/* Returns the heap's free pages and the unused part of the stack to the kernel. Called once,
   when start-up is over and the loop is about to serve. */
void host_memory_settle(void);

#endif
