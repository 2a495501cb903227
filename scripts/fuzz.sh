#!/usr/bin/env bash
# Runs every cargo fuzz target of fuzz/fuzz_targets for a while and prints, per target, the
# executions done and what was found. Needs the nightly toolchain (rustup); cargo-fuzz is
# installed into .tools/ on first use.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Seeds come from fuzz/seeds/<target> (committed, made from the fixtures); the corpus grows in
# fuzz/corpus/<target> and findings land in fuzz/artifacts/<target> (both ignored by git). A
# finding is turned into a plain #[test] on its input, fixed, and its input added to the seeds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-60}"
shift || true
TOOLS="$ROOT/.tools"
export PATH="$TOOLS/bin:$PATH"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz into .tools" >&2
    cargo install --locked --root "$TOOLS" cargo-fuzz@0.13.1 >&2
fi

cd "$ROOT/fuzz"
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build --release "${targets[@]/#/}" >/dev/null 2>&1 || cargo +nightly fuzz build --release
printf '%-26s %14s %10s %s\n' target executions exec/s findings
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="$(mktemp)"
    seeds=()
    [[ -d "seeds/$target" ]] && seeds=("seeds/$target")
    if cargo +nightly fuzz run --release "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1; then
        found=none
    else
        found="$(grep -m1 -E 'ERROR: libFuzzer|panicked at|deadly signal|Test unit written to' "$log" || echo "failed (see $log)")"
        status=1
    fi
    runs="$(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
    rate="$(grep -m1 -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
    printf '%-26s %14s %10s %s\n' "$target" "$runs" "$rate" "$found"
    if [[ "$found" == none ]]; then rm -f "$log"; else echo "  log: $log"; fi
done
exit "$status"
