// SPDX-License-Identifier: Apache-2.0
#ifndef HOST_MEMORY_H
#define HOST_MEMORY_H

/* Malloc settings for a long-lived daemon with a small heap. Called first thing in the daemon. */
void host_memory_init(void);

/* Returns the heap's free pages, the unused part of the stack and the clean pages of code and
   constants to the kernel. Called when start-up is over and the loop is about to serve, and
   then once the shim has been idle a moment after child exits or calls (host/shim.c). */
void host_memory_settle(void);

#endif
