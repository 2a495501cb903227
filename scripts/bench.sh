#!/usr/bin/env bash
# The planner benchmarks of issue 3, in a release build:
#   1. parse-and-pack throughput on a 5,000,000-row gzipped CSV inventory, against `gzip -dc`;
#   2. peak resident memory planning that file and a 10x larger one (50,000,000 rows);
#   3. SQS messages and DynamoDB writes per 1,000 tasks;
#   4. Parquet and ORC inventories: rows/s and peak memory (benches/columnar.rs).
#
#   scripts/bench.sh            run them all (first run also generates the data file, ~1 minute)
#
# The data file is cached in target/bench-data/ (about 400 MiB). Environment knobs:
#   BENCH_ROWS=500000      a smaller file (quick look; figures are then not the documented ones)
#   BENCH_REPEAT=3         timed runs per measurement, the best is reported (default 2)
#   BENCH_SKIP_MEMORY=1    skip the memory measurement (it plans 55 million rows)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v gzip >/dev/null || { echo "bench.sh: gzip is needed for the comparison" >&2; exit 1; }
cargo bench -p batchops --bench planner "$@"
exec cargo bench -p batchops --bench columnar "$@"
