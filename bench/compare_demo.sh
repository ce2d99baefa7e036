#!/usr/bin/env bash
# The README's "Is the difference real?" output: the quick offline demo (train, sweep), then
# two of its points compared problem by problem with `passk compare`.
#
#     bash bench/compare_demo.sh [OUT_DIR]
set -euo pipefail
out=${1:-/tmp/passk_demo_quick}
passk demo --quick --out "$out" --no-progress > "$out.demo.log" 2>&1
passk compare "$out/run/points/wise-ft_a0.500" "$out/run/points/wise-ft_a1.000" \
    --k 1,4 --out "$out/compare.json"
