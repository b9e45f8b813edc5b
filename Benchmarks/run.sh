#!/usr/bin/env bash
# Measures, side by side in one run on this machine, for float32 `l1 > l2 > nesterov > sgd`:
#   - Regula's chain of four separately loaded rules (`regula bench`, default settings; the built-in rules
#     declare they never fail, so their steps need no undo journal),
#   - the same arithmetic as one Regula rule (Benchmarks/fused_seed_rule.c): the plugin boundary's cost,
#   - a hand-fused C loop, -O3 -march=native -fopenmp (Benchmarks/fused_loop.c): the memory limit,
#   - torch's fastest CPU path (Benchmarks/torch_sgd.py), when python3 can import torch.
# Each implementation runs ROUNDS times per case, interleaved, and the table gives the median of the
# rounds' medians (each a median over STEPS steps). Ratios are against the C loop of the same run.
#
#   Benchmarks/run.sh [ROUNDS] [STEPS]        (defaults 5 and 20; prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build -c release >&2
bin=$(swift build -c release --show-bin-path)
regula="$bin/regula"
gcc -O3 -march=native -fopenmp Benchmarks/fused_loop.c -o "$work/fused_loop"
mkdir -p "$work/plugins"
cc -shared -fPIC -O3 -march=native -ffp-contract=off $("$regula" config --cflags) Benchmarks/fused_seed_rule.c -o "$work/plugins/libseed_fused.so"
have_torch=no
python3 -c "import torch" 2>/dev/null && have_torch=yes

ns() { python3 -c 'import json,sys; print(json.load(sys.stdin)["ns_per_element"])'; }
median() { python3 -c 'import statistics,sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d)"
echo "rounds: $rounds, steps per round: $steps (median per round, then median of rounds)"
echo
echo "| case | hand-fused C loop | Regula chain (4 rules) | Regula, 1 fused rule | torch fused SGD + L1 | chain / C | chain / fused rule | torch / chain |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for case in "16777216 1" "10000000 10000"; do
    set -- $case
    elements=$1 tensors=$2
    c=() chain=() fused=() torch=()
    for _ in $(seq "$rounds"); do
        c+=("$("$work/fused_loop" "$elements" "$tensors" "$steps" | ns)")
        chain+=("$("$regula" bench --rules l1,l2,nesterov,sgd --elements "$elements" --tensors "$tensors" --steps "$steps" --json | ns)")
        fused+=("$("$regula" bench --rules seed_fused --plugin-dir "$work/plugins" --elements "$elements" --tensors "$tensors" --steps "$steps" --json | ns)")
        if [ "$have_torch" = yes ]; then torch+=("$(python3 Benchmarks/torch_sgd.py "$elements" "$tensors" "$steps" | ns)"); fi
    done
    mc=$(median "${c[@]}") mchain=$(median "${chain[@]}") mfused=$(median "${fused[@]}")
    if [ "$have_torch" = yes ]; then mtorch=$(median "${torch[@]}"); else mtorch="not installed"; fi
    ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(a)/float(b)) if b.replace('.','',1).isdigit() and a.replace('.','',1).isdigit() else '-')" "$1" "$2"; }
    echo "| $elements elements in $tensors tensor(s) | $mc | $mchain | $mfused | $mtorch | $(ratio "$mchain" "$mc") | $(ratio "$mchain" "$mfused") | $(ratio "$mtorch" "$mchain") |"
done
echo
echo "(ns per element, float32, $(nproc) threads)"
