#!/usr/bin/env bash
# The demo: a real S3 Batch Operations job over a few hundred objects on the local emulator.
# `make demo` runs it with moto server started and AWS_ENDPOINT_URL pointing at it, after
# `cargo build --workspace`. Every step uses the batchops CLI as a user would.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BATCHOPS="$ROOT/target/debug/batchops"
PYTHON="$ROOT/.venv/bin/python"
: "${AWS_ENDPOINT_URL:?run through make demo, which starts moto server}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
work="$ROOT/.tmp/demo"
mkdir -p "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "batchops local up: the stack's table, queues and system bucket on $AWS_ENDPOINT_URL"
"$BATCHOPS" local up

step "seed: 300 objects (some keys with spaces, commas, '+', '%' and unicode), a CSV manifest, a CreateJob file"
"$PYTHON" "$ROOT/scripts/demo_seed.py" --count 300 --job-file "$work/create-job.json"

step "batchops create-job --cli-input-json file://$work/create-job.json"
created=$("$BATCHOPS" create-job --cli-input-json "file://$work/create-job.json")
echo "$created"
job_id=$("$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["JobId"])' <<<"$created")

step "batchops local run --job-id $job_id: planner, executor and reporter handlers against the queues"
"$BATCHOPS" local run --job-id "$job_id"

step "batchops describe-job --job-id $job_id"
"$BATCHOPS" describe-job --job-id "$job_id"

step "the completion report"
"$PYTHON" "$ROOT/scripts/demo_report.py" --bucket demo-reports --prefix batch-reports --job-id "$job_id"
