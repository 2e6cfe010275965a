#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks that an installed SDK keeps to its namespace: every symbol libcshim_sdk.a defines starts
# with cshim_, every macro, typedef, struct, union and enum tag of include/cshim/*.h with
# CSHIM_/cshim_, and no public header points at notes outside the tree. Prints each offender;
# exits 1 if there is one, 2 on a usage error.
#
#   namespace.sh <install prefix>
set -uo pipefail

prefix=${1:-}
if [ -z "$prefix" ] || [ ! -d "$prefix" ]; then
  echo "usage: namespace.sh <install prefix>" >&2
  exit 2
fi
archive=$(find "$prefix" -name libcshim_sdk.a | head -1)
headers=$prefix/include/cshim
if [ -z "$archive" ] || [ ! -d "$headers" ]; then
  echo "namespace.sh: no libcshim_sdk.a or include/cshim under \`$prefix\`" >&2
  exit 2
fi
bad=0

# Defined global symbols (types T D B R V W...; `nm -g` leaves out locals).
syms=$(nm -g --defined-only "$archive" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
if [ -z "$syms" ]; then
  echo "namespace.sh: \`$archive\` defines no symbols" >&2
  exit 2
fi
while read -r s; do
  case $s in cshim_*) ;; *)
    echo "symbol outside cshim_: $s ($archive)"
    bad=1
    ;;
  esac
done <<<"$syms"

# Names the headers declare: macros, typedef names, and struct/union/enum tags.
for h in "$headers"/*.h; do
  names=$(
    sed -n -e 's/^[[:space:]]*#[[:space:]]*define[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' \
      -e 's/^[[:space:]]*\(typedef[[:space:]].*\|\)\(struct\|union\|enum\)[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*\({.*\|\)$/\3/p' \
      -e 's/^}[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);$/\1/p' \
      -e 's/^typedef[[:space:]].*[[:space:]*(]\([A-Za-z_][A-Za-z0-9_]*\)\()(.*\|\);$/\1/p' "$h"
  )
  # Enumerators: a name alone on its line (before `=` or `,`) inside an enum body.
  names+=" "$(awk '/^(typedef )?enum[^;(]*$/ { in_enum = 1; next }
    in_enum && /^[[:space:]]*}/ { in_enum = 0 }
    in_enum && /^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*(=|,|$)/ {
      sub(/^[[:space:]]*/, ""); sub(/[^A-Za-z0-9_].*$/, ""); print }' "$h")
  for n in $names; do
    case $n in CSHIM_* | cshim_*) ;; *)
      echo "name outside CSHIM_/cshim_: $n (${h#"$prefix"/})"
      bad=1
      ;;
    esac
  done
  # "§" points into a document that is not shipped with the headers.
  if grep -n '§' "$h" >/dev/null; then
    grep -n '§' "$h" | sed "s|^|reference to notes outside the tree: ${h#"$prefix"/}:|"
    bad=1
  fi
done

n_syms=$(wc -l <<<"$syms")
if [ "$bad" -eq 0 ]; then
  echo "namespace.sh: $n_syms symbols and $(ls "$headers"/*.h | wc -l) headers keep to cshim_/CSHIM_"
fi
exit "$bad"
