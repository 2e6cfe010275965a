// SPDX-License-Identifier: Apache-2.0
// `cshimctl stats`: the cgroup metrics in a Stats answer (io.containerd.cgroups.v1.Metrics or
// io.containerd.cgroups.v2.Metrics in the Any), as JSON and as a human table.
#ifndef CSHIMCTL_STATS_H
#define CSHIMCTL_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include <cshim/error.h>

#include "pbjson.h"

/* Field names of the cgroup metrics messages (generated without names, see metrics.proto). */
extern const pbjson_names_t ctl_stats_names[];

/* {"type_url": URL, "metrics": {...every field...}} for the two cgroup types (64-bit figures as
   numbers; past 2^63-1, i.e. "max", as decimal strings); {"type_url", "size", "value": base64}
   for any other type. Fails only on bytes that do not decode as the named type. Caller owns
   *out. */
int ctl_stats_decode(const char *type_url, const uint8_t *data, size_t len, json_t **out,
                     cshim_error_t *err);

/* The human form of ctl_stats_decode's object: the type, then one "METRIC VALUE" row per
   figure with dotted names (memory.usage, io.usage[8:0].rbytes), "max" for an unlimited value. */
void ctl_stats_print(FILE *out, const json_t *stats);

#endif
