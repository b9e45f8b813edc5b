#!/usr/bin/env bash
# Times distributed steps (Docs/DISTRIBUTED.md) on this machine: for each chain, one process with every core,
# then mpirun jobs of 2 and 3 ranks in both modes, each step split into communication (time inside MPI,
# waiting for other ranks included) and compute. float32, one tensor of ELEMENTS elements and the same
# elements in 1,000 tensors. Each configuration runs ROUNDS times, interleaved; the table gives the median of
# the rounds' medians (each a median over STEPS steps) of rank 0.
#
# More ranks than cores oversubscribe the machine: those rows show that the job runs, not how fast.
# MPIRUN_OPTIONS adds options to every mpirun (for example "--mca btl_vader_single_copy_mechanism none").
#
#   Benchmarks/distributed.sh [ROUNDS] [STEPS] [ELEMENTS]     (defaults 3, 20, 4194304; prints Markdown tables)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-20}
elements=${3:-4194304}
command -v mpirun >/dev/null || { echo "distributed.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }

swift build -c release --product regula >&2
regula="$(swift build -c release --show-bin-path)/regula"
consent=()
[ "$(id -u)" = 0 ] && consent=(--allow-run-as-root)
cores=$(nproc)

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1], "-"))' "$1"; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:] if x != "-"]; print("%.2f" % statistics.median(v) if v else "-")' "$@"; }
megabytes() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[1]) / 1e6))' "$1"; }

# run RANKS MODE ARGS...: one JSON line from rank 0 (RANKS 0: one process, no mpirun).
run() {
    local ranks=$1 mode=$2
    shift 2
    if [ "$ranks" = 0 ]; then
        "$regula" bench --json --steps "$steps" "$@"
    else
        local oversubscribe=()
        [ "$ranks" -gt "$cores" ] && oversubscribe=(--oversubscribe)
        # shellcheck disable=SC2086
        mpirun "${consent[@]}" "${oversubscribe[@]}" --bind-to none ${MPIRUN_OPTIONS:-} -np "$ranks" \
            "$regula" bench --json --steps "$steps" --distributed "$mode" "$@"
    fi
}

echo "machine: $cores cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d)"
echo "rounds: $rounds, steps per round: $steps; $elements float32 elements; mpirun options: ${MPIRUN_OPTIONS:-none}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
configurations=("0 -" "2 replicated" "2 sharded" "3 replicated" "3 sharded")
for chain in adamw clip_global_norm,lamb; do
    for tensors in 1 1000; do
        echo
        echo "### ${chain//,/ > }, $tensors tensor$([ "$tensors" = 1 ] || echo s; true)"
        echo
        echo "| run | step (ms) | communication (ms) | compute (ms) | sent per rank per step (MB) | state per rank (MB) |"
        echo "| --- | --- | --- | --- | --- | --- |"
        declare -A step=() communication=() compute=() sent=() state=()
        for round in $(seq "$rounds"); do
            for configuration in "${configurations[@]}"; do
                read -r ranks mode <<< "$configuration"
                json=$(run "$ranks" "$mode" --rules "$chain" --elements "$elements" --tensors "$tensors")
                step[$configuration]+=" $(echo "$json" | field median_step_ms)"
                communication[$configuration]+=" $(echo "$json" | field median_communication_ms)"
                compute[$configuration]+=" $(echo "$json" | field median_compute_ms)"
                sent[$configuration]=$(echo "$json" | field bytes_sent_per_step)
                state[$configuration]=$(echo "$json" | python3 -c 'import json,sys; s=json.load(sys.stdin).get("rank_state_bytes"); print(s[0] if s else "-")')
            done
        done
        for configuration in "${configurations[@]}"; do
            read -r ranks mode <<< "$configuration"
            label="1 process, $cores threads"
            [ "$ranks" = 0 ] || label="$ranks ranks, $mode$([ "$ranks" -gt "$cores" ] && echo ' (oversubscribed)'; true)"
            sentMB=-; stateMB=-
            [ "${sent[$configuration]}" = - ] || sentMB=$(megabytes "${sent[$configuration]}")
            [ "${state[$configuration]}" = - ] || stateMB=$(megabytes "${state[$configuration]}")
            # shellcheck disable=SC2086
            echo "| $label | $(median ${step[$configuration]}) | $(median ${communication[$configuration]}) | $(median ${compute[$configuration]}) | $sentMB | $stateMB |"
        done
        unset step communication compute sent state
    done
done
