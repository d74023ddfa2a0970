#!/usr/bin/env bash
# Runs the peer benchmarks (scikit-learn, scikit-image, torch, anomalib) and sieve's criterion
# benchmarks back to back on this machine, then prints one table of ratios.
#
#   PEERS=../shared/peers PEERS_ROOT=~/.cache/sieve-peers bash scripts/bench-compare.sh [STEP...]
#
# PEERS is the folder of the peer scripts (run_reference.sh, run_detector.sh); PEERS_ROOT is a
# scratch folder for their virtual environments, generated maps and results (the torch
# environment takes about 6 GB). STEP is any of: peers, sieve, pipeline, table (default: all
# four). The whole run takes about an hour and a half on two cores, most of it in the peers
# and in the `sieve run` on magnetic_tile.
set -euo pipefail
cd "$(dirname "$0")/.."

peers="${PEERS:-../shared/peers}"
export PEERS_ROOT="${PEERS_ROOT:-$HOME/.cache/sieve-peers}"
results="$PEERS_ROOT/results"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(peers sieve pipeline table)

wants() {
    local step
    for step in "${steps[@]}"; do
        [ "$step" = "$1" ] && return 0
    done
    return 1
}

if wants peers; then
    if [ ! -f "$peers/run_reference.sh" ]; then
        echo "error: peer scripts not found in $peers; set PEERS to their folder" >&2
        exit 2
    fi
    bash "$peers/run_reference.sh" all
    bash "$peers/run_detector.sh" all
    "$PEERS_ROOT/venv-torch/bin/python" -W ignore scripts/peers/efficientnet_lite0_bench.py \
        --json "$results/efficientnet_lite0.json"
fi

if wants sieve; then
    # The filter, SVM and AUROC peers are single-threaded; the detector peers use two threads.
    RAYON_NUM_THREADS=1 cargo bench -p sieve-core
    RAYON_NUM_THREADS=2 cargo bench -p sieve-detect
fi

if wants pipeline; then
    SIEVE_THREADS=2 bash scripts/bench-run.sh ../shared/data/magnetic_tile \
        priors/magnetic_tile.toml /tmp/sieve-bench-tile
fi

if wants table; then
    pipeline=()
    [ -f /tmp/sieve-bench-tile/report.json ] && pipeline=(--pipeline /tmp/sieve-bench-tile/report.json)
    python3 scripts/bench_compare.py --criterion target/criterion --peers "$results" "${pipeline[@]}"
fi
