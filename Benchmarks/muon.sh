#!/usr/bin/env bash
# Times one `muon` step against torch.optim.Muon, side by side in one run, on one float32 matrix of torch's
# defaults (momentum 0.95, nesterov, 5 Newton-Schulz iterations):
#
#   1024 x 1024   square
#   4096 x 1024   tall: both transpose it and iterate on the wide 1024 x 4096
#
# Regula's column is `regula bench --rules muon --shape ROWS,COLUMNS` from a release build, with torch's lr and
# momentum: the whole step as the optimizer runs it, its GEMMs in the host's OpenBLAS. torch's are
# torch.optim.Muon with its Newton-Schulz iteration run in float32 (the fixtures' patch: Benchmarks/torch_muon.py)
# and stock, in bfloat16, for the record. Each contender runs ROUNDS times, interleaved (torch, Regula, torch, ...), a round being STEPS timed
# steps after two warm-up steps; a cell is the median of the rounds' median step in ms, and in brackets the
# fastest and the slowest round's median. GFLOP/s counts the Newton-Schulz products only: per iteration
# A = X Xᵀ, B = b A + c A A, X = a X + B X on the wide m x n orientation, 4 m² n + 2 m³ operations.
#
#   Benchmarks/muon.sh [ROUNDS] [STEPS]          (defaults 5, 5; prints a Markdown table)
#   PYTHON=/path/to/python Benchmarks/muon.sh    (the python with torch; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-5}
python=${PYTHON:-python3}
"$python" -c "import torch" 2>/dev/null || { echo "muon.sh: $python has no torch; name one that has in PYTHON" >&2; exit 1; }
swift build -c release --product regula >/dev/null
regula=$(swift build -c release --show-bin-path)/regula
cores=$(getconf _NPROCESSORS_ONLN)

# The median, fastest and slowest of the rounds' medians, read from one JSON line per round; the key holding a
# round's median is $1.
summary() {
    python3 -c 'import json,statistics,sys
key, rows, columns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
medians = [json.loads(x)[key] for x in sys.argv[4:]]
m, n = min(rows, columns), max(rows, columns)
gflop = 5 * (4 * m * m * n + 2 * m ** 3) / 1e9
median = statistics.median(medians)
print("%.1f\t%.1f [%.1f–%.1f]\t%.0f" % (median, median, min(medians), max(medians), gflop / (median / 1e3)))' "$@"
}
ratio() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }

first=$("$regula" bench --rules muon --shape 8,8 --steps 1 --json)
torch_threads=$("$python" -c "import torch; print(torch.get_num_threads())")
echo "machine: $cores cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(date -u +%Y-%m-%d)"
echo "torch $("$python" -c "import torch; print(torch.__version__)") on $torch_threads threads;" \
     "Regula: $(python3 -c 'import json,sys; r = json.loads(sys.argv[1]); print("%d optimizer threads, BLAS %s on %d threads" % (r["threads"], r["blas_library"], r["blas_threads"]))' "$first")"
echo "rounds: $rounds, steps per round: $steps; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| shape | torch, float32 NS | Regula | Regula / torch float32 | torch GFLOP/s | Regula GFLOP/s | stock torch, bfloat16 NS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for shape in "1024 1024" "4096 1024"; do
    set -- $shape
    torch32=() ours=() torch16=()
    for _ in $(seq "$rounds"); do
        torch32+=("$("$python" Benchmarks/torch_muon.py "$1" "$2" "$steps" float32)")
        ours+=("$("$regula" bench --rules muon --option lr=0.001 --option momentum=0.95 --shape "$1,$2" --steps "$steps" --json)")
        torch16+=("$("$python" Benchmarks/torch_muon.py "$1" "$2" "$steps" bfloat16)")
    done
    IFS=$'\t' read -r t32 t32cell t32rate <<<"$(summary ms_per_step "$1" "$2" "${torch32[@]}")"
    IFS=$'\t' read -r r rcell rrate <<<"$(summary median_step_ms "$1" "$2" "${ours[@]}")"
    IFS=$'\t' read -r _ t16cell _ <<<"$(summary ms_per_step "$1" "$2" "${torch16[@]}")"
    echo "| $1 × $2 | $t32cell | $rcell | $(ratio "$r" "$t32") | $t32rate | $rrate | $t16cell |"
done
echo
echo "(ms per step, float32 parameters: median of the rounds' medians [fastest–slowest round]);" \
     "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
