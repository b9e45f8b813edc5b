#!/usr/bin/env bash
# Times `regula replay` (release build) on large specs, JSON and safetensors, against Python's json.load of
# the same data (Benchmarks/replay_bench.py says what each case is). Prints a Markdown table.
#
#   Benchmarks/replay.sh [ROUNDS]        (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >&2
bin=$(swift build -c release --show-bin-path)
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(python3 --version); $(date -u +%Y-%m-%d)"
python3 Benchmarks/replay_bench.py "$bin/regula" "${1:-5}"
