# batchops - the two commands: `make demo` and `make test`. Both install the local tools first
# (scripts/bootstrap.sh: a .venv with moto, cargo-lambda, cfn-lint, SAM CLI and zig).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The tools of .venv come first; SAM's telemetry stays off.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
REGION ?= us-east-1

.PHONY: help bootstrap build lint fmt-check clippy doc cfn-lint sam-validate unused-deps test unit-test \
	integration-test demo sam-build services-stop chaos fuzz checkov bench-exec

help:
	@echo "make demo        run a real job over a few hundred objects against moto server"
	@echo "make test        unit + integration tests (moto server, cargo lambda watch), then lint"
	@echo "make lint        cargo fmt --check, clippy -D warnings, docs, no unused dependencies, cfn-lint, sam validate --lint"
	@echo "make checkov     checkov on template.yaml (installs a pinned checkov into .venv-checkov)"
	@echo "make build       cargo build --workspace"
	@echo "make sam-build   sam build (release build of every function for Lambda; slow)"
	@echo "make bootstrap   install the local tools into .venv"
	@echo "make chaos       jobs of TASKS tasks in all (default 100000) on moto with every fault on, seed SEED (JOBS=tagging,copy,invoke)"
	@echo "make bench-exec  batchops against s5cmd (copy) and boto3 (tagging) on moto and s3s-fs: tasks/s, ratios, requests, cost"
	@echo "make fuzz        every cargo fuzz target for FUZZ_SECONDS each (default 60; nightly toolchain)"

bootstrap:
	scripts/bootstrap.sh

build:
	cargo build --workspace

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# The library's API docs build without a broken link (missing_docs itself is a workspace lint).
doc:
	RUSTDOCFLAGS="-D warnings" cargo doc -p batchops --no-deps

cfn-lint: bootstrap
	cfn-lint template.yaml

sam-validate: bootstrap
	sam validate --lint --region $(REGION)

# Every dependency a crate declares is used (the crates that cannot be seen to be used are listed,
# with the reason, under [package.metadata.cargo-machete]).
unused-deps: bootstrap
	.tools/bin/cargo-machete

lint: bootstrap fmt-check clippy doc unused-deps cfn-lint sam-validate

# checkov has its own virtual environment: its dependencies pin other versions than SAM CLI's.
# Every finding it would report is skipped in the template with the reason (README, "Deploying").
CHECKOV_VERSION ?= 3.3.30
checkov:
	test -x .venv-checkov/bin/checkov || \
		(python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -q checkov==$(CHECKOV_VERSION))
	.venv-checkov/bin/checkov -f template.yaml --framework cloudformation --compact --quiet

# Compiles the tests before the services start, so that no server idles through the build; then
# moto server and cargo lambda watch run for the whole test run and stop afterwards, even on failure.
integration-test: bootstrap
	cargo test --workspace --no-run
	scripts/with-services.sh --lambda -- cargo test --workspace

unit-test:
	cargo test --workspace --lib --bins

test: bootstrap integration-test lint

demo: bootstrap build
	scripts/with-services.sh -- scripts/demo.sh

# Release builds of the five functions with cargo-lambda and zig, into .aws-sam/build.
sam-build: bootstrap
	sam build --beta-features

# Stops servers left behind by an interrupted run.
services-stop:
	scripts/lambda-watch.sh stop
	scripts/moto.sh stop

# The chaos run (tests/chaos.rs): a tagging, a copy and a LambdaInvoke job over TASKS objects in
# all, every fault on (seeded), then every row, count and effect checked. SEED may be a list: 1,2,3.
TASKS ?= 100000
SEED ?= 1
CHAOS_TIMEOUT ?= 5400
JOBS ?= tagging,copy,invoke
chaos: bootstrap
	cargo test --release -p batchops-cli --test tests --no-run
	CHAOS_TASKS=$(TASKS) CHAOS_SEEDS=$(SEED) CHAOS_TIMEOUT_SECONDS=$(CHAOS_TIMEOUT) CHAOS_JOBS=$(JOBS) \
		scripts/with-services.sh --lambda --s3-apart -- \
		cargo test --release -p batchops-cli --test tests chaos:: -- --nocapture

# The executor benchmark (shared/benches/exec.rs): installs s5cmd, matplotlib and s3s-fs, builds
# the release CLI, then runs batchops and its peers in turn on moto and on s3s-fs.
bench-exec:
	scripts/bootstrap.sh --bench
	cargo build --release -p batchops-cli
	scripts/with-services.sh -- cargo bench -p batchops --bench exec

# Fuzzing (fuzz/fuzz_targets): each target for FUZZ_SECONDS; prints executions and findings.
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)
