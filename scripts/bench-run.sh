#!/usr/bin/env bash
# Benchmark of the main job: runs `sieve run` (release build) on one data set and prints a
# table of wall time per stage, milliseconds per image, the detector's and the filter's time
# per test image, and peak memory.
#
#   bash scripts/bench-run.sh [DATA] [PRIOR] [OUT]
#
# Defaults: ../shared/data/magnetic_tile, priors/magnetic_tile.toml, /tmp/sieve-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:-../shared/data/magnetic_tile}"
prior="${2:-priors/magnetic_tile.toml}"
out="${3:-/tmp/sieve-bench}"

cargo build --release --quiet
threads="${SIEVE_THREADS:-$(nproc)}"
target/release/sieve --quiet --threads "$threads" run --data "$data" --prior "$prior" --out "$out"

python3 - "$out/report.json" "$threads" <<'PY'
import json, platform, sys

report = json.load(open(sys.argv[1]))
timing = report["timing"]
cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
print(f"sieve run on {report['data']} ({report['detector']['name']}), {sys.argv[2]} threads, {cpu}")
print(f"{'stage':<22} {'seconds':>9} {'images':>7} {'ms/image':>9}")
for stage, seconds in sorted(timing["stages"].items()):
    n = timing["images"].get(stage)
    per = f"{1000 * seconds / n:9.1f}" if n else f"{'':>9}"
    print(f"{stage:<22} {seconds:9.1f} {n if n else '':>7} {per}")
print(f"{'total':<22} {timing['total']:9.1f}")
print(f"detector per test image: {timing['detector_ms_per_image']:.1f} ms (one image per thread)")
print(f"filter per test image:   {timing['filter_ms_per_image']:.2f} ms (one image per thread)")
print(f"peak memory:             {timing['peak_memory_mib']:.0f} MiB")
PY
