// SPDX-License-Identifier: Apache-2.0
// Tests of the OCI runtime wrapper (being written).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

int
main(void)
{
  return 0;
}
