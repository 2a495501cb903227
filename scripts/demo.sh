#!/usr/bin/env bash
# The demo job (placeholder: the lead writes it). `make demo` runs it with moto server started and
# AWS_ENDPOINT_URL / BATCHOPS_TEST_ENDPOINT pointing at it (see scripts/with-services.sh), after
# `cargo build --workspace`; the batchops CLI is target/debug/batchops.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BATCHOPS="$ROOT/target/debug/batchops"
echo "demo: moto server at ${AWS_ENDPOINT_URL:?run through make demo}; CLI $BATCHOPS"
echo "demo: not written yet" >&2
exit 1
