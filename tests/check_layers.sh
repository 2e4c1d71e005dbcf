#!/bin/sh
# The layer rule of docs/ARCHITECTURE.md: a file never includes a header of a higher layer. Lists every
# include that breaks it and fails; the order is the table's, host/cli on top.
cd "${1:-.}" || exit 1
order="host/core host/io host/dist kernels model sae eval host/cli"
rank() { # the layer index of a path (the longest matching folder), or nothing
    r=""; i=0
    for l in $order; do
        case "$1" in "$l"/*) r=$i ;; esac
        i=$((i + 1))
    done
    echo "$r"
}
bad=0 n=0
for f in $(find host kernels model sae eval -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.cc'); do
    fl=$(rank "$f")
    [ -n "$fl" ] || continue
    n=$((n + 1))
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        il=$(rank "$inc")
        if [ -n "$il" ] && [ "$il" -gt "$fl" ]; then
            echo "layer order broken: $f includes $inc"
            bad=$((bad + 1))
        fi
    done
done
[ "$n" -gt 100 ] || { echo "only $n source files found under $(pwd): wrong folder?"; exit 1; }
echo "$n files checked, $bad include(s) break the layer order"
[ "$bad" -eq 0 ]
