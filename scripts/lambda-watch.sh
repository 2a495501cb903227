#!/usr/bin/env bash
# `cargo lambda watch` on a free loopback port: serves the Lambda Invoke API for every function
# binary of the workspace (POST /2015-03-31/functions/<binary>/invocations).
#
#   scripts/lambda-watch.sh start   start it (or reuse the running one), wait until it answers,
#                                   compile and warm up the functions in LAMBDA_WATCH_WARM, print its URL
#   scripts/lambda-watch.sh stop    stop it and the function processes it started
#   scripts/lambda-watch.sh url     print the URL of the running server
#
# The functions inherit AWS_ENDPOINT_URL (default: the URL of scripts/moto.sh when it runs),
# AWS_REGION (us-east-1), test credentials, RUST_LOG and every BATCHOPS_* variable that is set.
#
# Settings (environment):
#   LAMBDA_WATCH_PORT            port instead of a free one
#   LAMBDA_WATCH_WARM            functions invoked once at start so that their first build is done
#                                before tests run (default: example-task-handler; empty: none)
#   LAMBDA_WATCH_BUILD_TIMEOUT   seconds allowed for that first build (default 2400)
#   LAMBDA_WATCH_CONCURRENCY     instances per function (default 4)
#   LAMBDA_WATCH_RELOAD=1        rebuild on code changes (off by default: tests want a fixed build)
#   LAMBDA_WATCH_TARGET_DIR      cargo target dir of its builds (default target/lambda-watch, the one
#                                the test harness uses too: cargo run of one binary resolves other
#                                features than cargo test --workspace, and sharing target/ would make
#                                each of them rebuild the dependency tree after the other)
#
# State: .tmp/lambda-watch.{url,pid,log,env}.
set -euo pipefail
SERVICE=lambda-watch
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

# The environment of the function processes, as an env file (values may hold commas, which
# --env-var would split on).
write_function_env() {
    local endpoint="${AWS_ENDPOINT_URL:-}" name
    if [[ -z "$endpoint" && -f "$STATE_DIR/moto.url" ]]; then
        endpoint="$(cat "$STATE_DIR/moto.url")"
    fi
    {
        [[ -n "$endpoint" ]] && echo "AWS_ENDPOINT_URL=$endpoint"
        echo "AWS_REGION=${AWS_REGION:-us-east-1}"
        echo "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}"
        echo "AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}"
        echo "AWS_EC2_METADATA_DISABLED=true"
        echo "RUST_LOG=${RUST_LOG:-info}"
        while IFS= read -r name; do
            echo "$name=${!name}"
        done < <(compgen -e | grep '^BATCHOPS_' | grep -v '^BATCHOPS_TEST_' || true)
    } >"$1"
}

# Invokes a function once with an empty invocation-contract request. Any answer means the binary
# is built and running (an error answer is fine here: the tests check behaviour, this checks build).
warm_up() {
    local url="$1" function="$2" timeout="$3"
    log "building and starting $function (first build can take several minutes)"
    "$(python_bin)" - "$url/2015-03-31/functions/$function/invocations" "$timeout" <<'PY' || { stop_service; die "$function did not answer; see $(log_file)"; }
import json, sys, time, urllib.request, urllib.error
url, timeout = sys.argv[1], float(sys.argv[2])
payload = json.dumps({"invocationSchemaVersion": "1.0", "invocationId": "warm-up",
                      "job": {"id": "warm-up"}, "tasks": []}).encode()
deadline = time.monotonic() + timeout
while True:
    try:
        req = urllib.request.Request(url, data=payload, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=max(1.0, deadline - time.monotonic())) as resp:
            print(f"warm-up answered {resp.status}", file=sys.stderr)
        sys.exit(0)
    except urllib.error.HTTPError as err:
        print(f"warm-up answered {err.code}: {err.read()[:300]!r}", file=sys.stderr)
        sys.exit(0)
    except Exception as err:  # not listening yet, or the build is still running
        if time.monotonic() >= deadline:
            print(f"warm-up gave up: {err}", file=sys.stderr)
            sys.exit(1)
        time.sleep(2)
PY
}

start() {
    local pid port url reload_args=()
    if pid="$(running_pid)" && [[ -f "$(url_file)" ]] && answers "$(cat "$(url_file)")"; then
        cat "$(url_file)"
        return 0
    fi
    stop_service
    [[ -x "$VENV/bin/cargo-lambda" ]] || die "cargo-lambda is not installed: run scripts/bootstrap.sh"
    port="${LAMBDA_WATCH_PORT:-$(free_port)}"
    url="http://127.0.0.1:$port"
    [[ "${LAMBDA_WATCH_RELOAD:-0}" == 1 ]] || reload_args=(--ignore-changes)
    mkdir -p "$STATE_DIR"
    write_function_env "$STATE_DIR/lambda-watch.env"
    cd "$ROOT"
    PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="${LAMBDA_WATCH_TARGET_DIR:-$ROOT/target/lambda-watch}" \
        start_background cargo lambda watch \
        --invoke-address 127.0.0.1 --invoke-port "$port" \
        --concurrency "${LAMBDA_WATCH_CONCURRENCY:-4}" \
        --env-file "$STATE_DIR/lambda-watch.env" "${reload_args[@]}"
    wait_until_up "$url" 120 "$(cat "$(pid_file)")"
    echo "$url" >"$(url_file)"
    log "running at $url (pid $(cat "$(pid_file)"), log $(log_file))"
    local function
    for function in ${LAMBDA_WATCH_WARM-example-task-handler}; do
        warm_up "$url" "$function" "${LAMBDA_WATCH_BUILD_TIMEOUT:-2400}"
    done
    echo "$url"
}

case "${1:-}" in
    start) start ;;
    stop) stop_service ;;
    url) [[ -f "$(url_file)" ]] && running_pid >/dev/null || die "not running"; cat "$(url_file)" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
