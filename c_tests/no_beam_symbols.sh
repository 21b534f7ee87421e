#!/bin/sh
# The C library must not need the BEAM: no enif_* symbol, defined or
# imported. Fails when the library is missing or nm cannot read it, and when
# the listing lacks the library's own API (so an empty listing cannot pass).
#   no_beam_symbols.sh NM LIBRARY
set -eu
nm=$1
lib=$2
[ -f "$lib" ] || { echo "$lib: no such library"; exit 1; }
symbols=$(mktemp)
trap 'rm -f "$symbols"' EXIT
"$nm" -D "$lib" > "$symbols" || { echo "$nm -D $lib failed"; exit 1; }
grep -q -w 'T rssl_config_builder_new' "$symbols" ||
  { echo "$lib does not define rssl_config_builder_new"; exit 1; }
if grep -w -E 'enif_[a-z_]+' "$symbols"; then
  echo "$lib refers to the BEAM's enif_* functions (above)"
  exit 1
fi
echo "no enif_* symbols in $lib"
