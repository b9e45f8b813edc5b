#!/usr/bin/env bash
# Measures Regula against the memory limit (a hand-fused C loop of the same arithmetic, -O3 -march=native
# -fopenmp) and torch's fastest CPU path, side by side in one run on this machine, float32:
#
#   sgd         `l1 > l2 > nesterov > sgd`: Regula's chain of four separately loaded rules, the same
#               arithmetic as one Regula rule (Benchmarks/fused_seed_rule.c: the plugin boundary's cost), the
#               C loop (Benchmarks/fused_loop.c), torch's fused SGD plus a foreach L1 pass (torch_sgd.py)
#   adamw       `adamw`: Regula's rule, the C loop (Benchmarks/fused_adamw.c), torch's AdamW(fused=True)
#               (torch_adamw.py)
#   clip-adamw  `clip_global_norm > adamw`: the same with torch's clip_grad_norm_ over all parameters first;
#               the C loop reads the gradients once more for the norm, the least clipping can cost
#
# torch columns appear where python3 can import torch. Each implementation runs ROUNDS times per case,
# interleaved (one run of each, then the next round), and each cell gives the median of the rounds' medians
# (each a median over STEPS steps) and, in brackets, the spread of the steps: the fastest step of all rounds
# and the median of the rounds' 90th percentiles. A median far above the fastest step means the steps were
# held up. Ratios are of medians, against the C loop of the same run. The load average before and after is
# printed: on a shared machine, numbers taken under load say less.
#
#   Benchmarks/run.sh [ROUNDS] [STEPS] [SUITE ...]     (defaults 5, 20, every suite; prints Markdown tables)
#   THREADS=1 Benchmarks/run.sh ...                    (every implementation on that many threads; default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-20}
shift $(( $# < 2 ? $# : 2 ))
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(sgd adamw clip-adamw)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build -c release >&2
bin=$(swift build -c release --show-bin-path)
regula="$bin/regula"
cflags="-O3 -march=native -fopenmp -ffp-contract=off -fno-math-errno"
gcc $cflags Benchmarks/fused_loop.c -o "$work/fused_loop" -lm
gcc $cflags Benchmarks/fused_adamw.c -o "$work/fused_adamw" -lm
mkdir -p "$work/plugins"
cc -shared -fPIC $("$regula" config --cflags) Benchmarks/fused_seed_rule.c -o "$work/plugins/libseed_fused.so"
have_torch=no
python3 -c "import torch" 2>/dev/null && have_torch=yes

threads=()
if [ -n "${THREADS:-}" ]; then
    threads=(--threads "$THREADS")
    export OMP_NUM_THREADS=$THREADS
fi
# One JSON line per round in, the median of the rounds' medians out; `cell` adds the spread beside it.
median() { python3 -c 'import json,statistics,sys; print("%.3f" % statistics.median(json.loads(x)["ns_per_element"] for x in sys.argv[1:]))' "$@"; }
cell() {
    python3 -c 'import json,statistics,sys
rounds = [json.loads(x) for x in sys.argv[1:]]
print("%.3f [%.3f–%.3f]" % (statistics.median(r["ns_per_element"] for r in rounds), min(r["min_ns_per_element"] for r in rounds),
                           statistics.median(r["p90_ns_per_element"] for r in rounds)))' "$@"
}
ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(a)/float(b)) if b.replace('.','',1).isdigit() and a.replace('.','',1).isdigit() else '-')" "$1" "$2"; }
bench() { "$regula" bench --json --steps "$steps" ${threads[@]+"${threads[@]}"} "$@"; }

echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d)"
echo "rounds: $rounds, steps per round: $steps (median per round, then median of rounds [fastest step–median p90]); torch: $have_torch"
echo "threads: ${THREADS:-$(getconf _NPROCESSORS_ONLN)}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

for suite in "${suites[@]}"; do
    case $suite in
    sgd)
        echo
        echo "### l1 > l2 > nesterov > sgd"
        echo
        echo "| case | hand-fused C loop | Regula chain (4 rules) | Regula, 1 fused rule | torch fused SGD + L1 | chain / C | chain / fused rule | torch / chain |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- |" ;;
    adamw | clip-adamw)
        echo
        [ "$suite" = adamw ] && echo "### adamw" || echo "### clip_global_norm > adamw"
        echo
        echo "| case | hand-fused C loop | Regula | torch fused | Regula / C | torch / Regula |"
        echo "| --- | --- | --- | --- | --- | --- |" ;;
    *) echo "unknown suite \"$suite\"; allowed: sgd, adamw, clip-adamw" >&2; exit 2 ;;
    esac
    for case in "16777216 1" "10000000 10000"; do
        set -- $case
        elements=$1 tensors=$2
        size=(--elements "$elements" --tensors "$tensors")
        c=() regula_ns=() fused=() torch=()
        for _ in $(seq "$rounds"); do
            case $suite in
            sgd)
                c+=("$("$work/fused_loop" "$elements" "$tensors" "$steps")")
                regula_ns+=("$(bench --rules l1,l2,nesterov,sgd "${size[@]}")")
                fused+=("$(bench --rules seed_fused --plugin-dir "$work/plugins" "${size[@]}")")
                [ "$have_torch" = no ] || torch+=("$(python3 Benchmarks/torch_sgd.py "$elements" "$tensors" "$steps")") ;;
            adamw)
                c+=("$("$work/fused_adamw" "$elements" "$tensors" "$steps")")
                regula_ns+=("$(bench --rules adamw --option lr=0.001 --option weight_decay=0.01 "${size[@]}")")
                [ "$have_torch" = no ] || torch+=("$(python3 Benchmarks/torch_adamw.py "$elements" "$tensors" "$steps")") ;;
            clip-adamw)
                c+=("$("$work/fused_adamw" "$elements" "$tensors" "$steps" clip)")
                regula_ns+=("$(bench --rules clip_global_norm,adamw --option lr=0.001 --option weight_decay=0.01 --option max_norm=1 "${size[@]}")")
                [ "$have_torch" = no ] || torch+=("$(python3 Benchmarks/torch_adamw.py "$elements" "$tensors" "$steps" clip)") ;;
            esac
        done
        mc=$(median "${c[@]}") mregula=$(median "${regula_ns[@]}") mtorch=- ctorch="not installed"
        if [ "$have_torch" = yes ]; then mtorch=$(median "${torch[@]}") ctorch=$(cell "${torch[@]}"); fi
        if [ "$suite" = sgd ]; then
            mfused=$(median "${fused[@]}")
            echo "| $elements elements in $tensors tensor(s) | $(cell "${c[@]}") | $(cell "${regula_ns[@]}") | $(cell "${fused[@]}") | $ctorch | $(ratio "$mregula" "$mc") | $(ratio "$mregula" "$mfused") | $(ratio "$mtorch" "$mregula") |"
        else
            echo "| $elements elements in $tensors tensor(s) | $(cell "${c[@]}") | $(cell "${regula_ns[@]}") | $ctorch | $(ratio "$mregula" "$mc") | $(ratio "$mtorch" "$mregula") |"
        fi
    done
done
echo
echo "(ns per element, float32, ${THREADS:-$(getconf _NPROCESSORS_ONLN)} threads: median [fastest step–median p90]); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
