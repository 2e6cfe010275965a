// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness: arbitrary bytes through the SDK's strict TOML reader (CRI config_body),
// checking what it promises about every document it accepts or refuses.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/toml.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cshim_toml_t doc;
  cshim_error_t err = NULL;

  memset(&doc, 0, sizeof(doc));
  if (cshim_toml_parse((const char *)data, size, "fuzz.toml", &doc, &err) < 0) {
    /* Refused: nothing kept, and the message names the source. */
    if (doc.n != 0 || doc.entries != NULL || !err || strncmp(err->msg, "fuzz.toml:", 10) != 0)
      abort();
    cshim_error_release(&err);
    return 0;
  }
  if (doc.n > CSHIM_TOML_MAX_ENTRIES)
    abort();
  for (size_t i = 0; i < doc.n; i++) {
    const cshim_toml_entry_t *e = &doc.entries[i];
    if (!e->key || !e->key[0] || e->depth < 1 || e->depth > CSHIM_TOML_MAX_DEPTH || e->line < 1 ||
        e->column < 1)
      abort();
    if (e->kind == CSHIM_TOML_STRING && !e->string)
      abort();
    if (!cshim_toml_kind_name(e->kind))
      abort();
    /* Keys are unique within a document. */
    for (size_t j = 0; j < i; j++)
      if (strcmp(doc.entries[j].key, e->key) == 0)
        abort();
  }
  cshim_toml_clear(&doc);
  return 0;
}
