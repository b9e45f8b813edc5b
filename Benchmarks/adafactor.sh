#!/usr/bin/env bash
# Times the `adafactor` rule against torch.optim.Adafactor, side by side in one run, float32, torch's defaults:
#
#   4 x 1024 x 4096   16.8 M elements in four matrices of 4096 columns
#   10000 x 10 x 100  10 M elements in 10,000 small matrices
#
# Regula's column is the rule's kernel as the host runs it (Benchmarks/adafactor_kernel.c: the shared object
# built as the built-ins are, one call per matrix, the matrices shared out among the threads, the gradient
# copied into the update buffer first), on 1 thread and on every core; torch's are Adafactor(foreach=True),
# its multi-tensor path, and foreach=False, its default for-loop path (Benchmarks/torch_adafactor.py), on
# torch's threads. Each runs ROUNDS times, interleaved; a cell is the median of the rounds' median step in ms,
# and in brackets the fastest step and the median of the rounds' 90th percentiles. Ratios are of medians.
#
# A second table puts the whole Regula step (`regula bench`, a release build) beside the seed chain
# `l1 > l2 > momentum > sgd` on the same 16.8 M float32 elements, interleaved, in GB/s of the bytes each step
# moves through memory per element: the seed chain 20 (the parameter read and written, the gradient read, the
# momentum buffer read and written; its update lives in cache, a block at a time), adafactor 36 (the
# gradient copied into the update 8, the moments reading the update and the parameter 8, u written over the
# update 8, the step reading u and the parameter and writing the parameter 12; row_var and col_var are 5 K
# elements per matrix and not counted).
#
#   Benchmarks/adafactor.sh [ROUNDS] [STEPS]       (defaults 5, 10; prints two Markdown tables)
#   PYTHON=/path/to/python Benchmarks/adafactor.sh  (the python with torch; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-10}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

flags="-O3 -march=native -ffp-contract=off -fno-math-errno"
compiler=$(command -v clang || command -v cc)
"$compiler" -shared -fPIC -fvisibility=hidden $flags -I Sources/RegulaABI/include Plugins/adafactor/adafactor.c \
    -lm -o "$work/libRegulaRuleAdafactor.so"
gcc $flags -fopenmp -I Sources/RegulaABI/include Benchmarks/adafactor_kernel.c -o "$work/adafactor_kernel" -ldl
have_torch=no
"$python" -c "import torch" 2>/dev/null && have_torch=yes
cores=$(getconf _NPROCESSORS_ONLN)

# One JSON line per round in; the median of the rounds' medians in ms, with the spread beside it.
cell() {
    python3 -c 'import json,statistics,sys
rounds = [json.loads(x) for x in sys.argv[1:]]
elements = rounds[0]["matrices"] * rounds[0]["rows"] * rounds[0]["columns"] / 1e6
print("%.1f [%.1f–%.1f]" % (statistics.median(r["ms_per_step"] for r in rounds), min(r["min_ns_per_element"] for r in rounds) * elements,
                           statistics.median(r["p90_ns_per_element"] for r in rounds) * elements))' "$@"
}
median() { python3 -c 'import json,statistics,sys; print(statistics.median(json.loads(x)["ms_per_step"] for x in sys.argv[1:]))' "$@"; }
ratio() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }

echo "machine: $cores cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(date -u +%Y-%m-%d); torch: $have_torch"
echo "rounds: $rounds, steps per round: $steps; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | Regula, 1 thread | Regula, $cores threads | torch foreach | torch for-loop | foreach / Regula ($cores) | for-loop / Regula ($cores) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for case in "4 1024 4096" "10000 10 100"; do
    set -- $case
    one=() all=() foreach=() single=()
    for _ in $(seq "$rounds"); do
        one+=("$(OMP_NUM_THREADS=1 "$work/adafactor_kernel" "$work/libRegulaRuleAdafactor.so" "$@" "$steps")")
        all+=("$(OMP_NUM_THREADS=$cores "$work/adafactor_kernel" "$work/libRegulaRuleAdafactor.so" "$@" "$steps")")
        if [ "$have_torch" = yes ]; then
            foreach+=("$("$python" Benchmarks/torch_adafactor.py "$@" "$steps" foreach)")
            single+=("$("$python" Benchmarks/torch_adafactor.py "$@" "$steps" single)")
        fi
    done
    row="| $1 × $2 × $3 | $(cell "${one[@]}") | $(cell "${all[@]}")"
    if [ "$have_torch" = yes ]; then
        m=$(median "${all[@]}")
        row="$row | $(cell "${foreach[@]}") | $(cell "${single[@]}") | $(ratio "$(median "${foreach[@]}")" "$m") | $(ratio "$(median "${single[@]}")" "$m") |"
    else
        row="$row | not installed | not installed | - | - |"
    fi
    echo "$row"
done
echo
echo "(ms per step, float32: median [fastest step–median p90]); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# The whole step against the seed chain, in GB/s of the bytes each moves.
swift build -c release --product regula >/dev/null
regula=$(swift build -c release --show-bin-path)/regula
seed=() whole=()
for _ in $(seq "$rounds"); do
    seed+=("$("$regula" bench --rules l1,l2,momentum,sgd --elements 16777216 --steps "$steps" --json)")
    whole+=("$("$regula" bench --rules adafactor --tensors 4 --shape 1024,4096 --steps "$steps" --json)")
done
# A row from one JSON line per round: the median step in ms [fastest–slowest round], and GB/s at the median
# of $1 bytes per element.
throughput() {
    python3 -c 'import json,statistics,sys
moved = float(sys.argv[1])
rounds = [json.loads(x) for x in sys.argv[2:]]
ms = [r["median_step_ms"] for r in rounds]
rates = [moved * r["elements"] / (m * 1e6) for r, m in zip(rounds, ms)]
print("%.1f [%.1f–%.1f] | %.0f | %.1f [%.1f–%.1f]" % (statistics.median(ms), min(ms), max(ms), moved,
      statistics.median(rates), min(rates), max(rates)))' "$@"
}
gbs() { python3 -c 'import json,statistics,sys
moved = float(sys.argv[1])
print(statistics.median(moved * json.loads(x)["elements"] / (json.loads(x)["median_step_ms"] * 1e6) for x in sys.argv[2:]))' "$@"; }
echo
echo "| 16.8 M float32 elements, $cores threads | ms per step | bytes moved per element | GB/s |"
echo "| --- | --- | --- | --- |"
echo "| l1 > l2 > momentum > sgd, one tensor | $(throughput 20 "${seed[@]}") |"
echo "| adafactor, 4 × 1024 × 4096 | $(throughput 36 "${whole[@]}") |"
echo
echo "(medians [fastest–slowest round's median]); seed GB/s / adafactor GB/s:" \
     "$(python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$(gbs 20 "${seed[@]}")" "$(gbs 36 "${whole[@]}")");" \
     "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
