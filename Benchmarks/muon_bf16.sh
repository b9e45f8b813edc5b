#!/usr/bin/env bash
# Times one step of `muon` with ns_dtype bfloat16 (its Newton–Schulz iteration in bfloat16 through the host's
# oneDNN product) against stock torch.optim.Muon, which runs the same iteration in bfloat16, on one float32
# matrix of 1024 x 1024 and one of 4096 x 1024, torch's defaults otherwise.
#
# Regula's column is `regula bench --rules muon --option ns_dtype=bfloat16` from a release build, on every core;
# torch's is Benchmarks/torch_muon.py on torch's threads. Each runs ROUNDS times, interleaved; a cell is the
# median of the rounds' median step in ms, with the fastest step in brackets. The ratio is of medians.
#
#   Benchmarks/muon_bf16.sh [ROUNDS] [STEPS]        (defaults 5, 10; prints a Markdown table)
#   PYTHON=/path/to/python Benchmarks/muon_bf16.sh   (the python with torch; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-10}
python=${PYTHON:-python3}
swift build -c release --product regula >/dev/null
regula="$(swift build -c release --show-bin-path)/regula"
"$python" -c "import torch" 2>/dev/null || { echo "muon_bf16.sh: $python has no torch (set PYTHON)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One table row from the rounds' JSON lines in $work/ours and $work/torch: the median of the rounds' median
# steps in ms, the fastest step in brackets, and the ratio of the medians.
row() {
    python3 - "$1" "$work/ours" "$work/torch" <<'PY'
import json, statistics, sys
label, cells = sys.argv[1], []
for path in sys.argv[2:]:
    rounds = [json.loads(line) for line in open(path)]
    # regula bench says median_step_ms, torch_muon.py ms_per_step (the median step too)
    cells.append((statistics.median(r.get("median_step_ms", r.get("ms_per_step")) for r in rounds),
                  min(r["min_step_ms"] for r in rounds)))
print("| %s | %.1f [%.1f] | %.1f [%.1f] | %.2f |" % (label, *cells[0], *cells[1], cells[0][0] / cells[1][0]))
PY
}

echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(date -u +%Y-%m-%d)"
echo "rounds: $rounds, steps per round: $steps; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| matrix | Regula muon, ns_dtype bfloat16 | stock torch.optim.Muon | Regula / torch |"
echo "| --- | --- | --- | --- |"
for shape in "1024 1024" "4096 1024"; do
    set -- $shape
    : >"$work/ours"
    : >"$work/torch"
    for _ in $(seq "$rounds"); do
        "$regula" bench --rules muon --shape "$1,$2" --option ns_dtype=bfloat16 --steps "$steps" --json >>"$work/ours"
        "$python" Benchmarks/torch_muon.py "$1" "$2" "$steps" bfloat16 >>"$work/torch"
    done
    row "$1 × $2"
done
echo
echo "(ms per step, float32); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
