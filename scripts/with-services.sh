#!/usr/bin/env bash
# Runs a command against the local AWS: starts moto server (and, with --lambda, cargo lambda watch),
# runs the command, and stops what it started whatever the command's outcome.
#
#   scripts/with-services.sh [--lambda] [--s3-apart] -- COMMAND [ARGS...]
#
# The command sees:
#   BATCHOPS_TEST_ENDPOINT         moto server's URL
#   BATCHOPS_TEST_AUTH_ENDPOINT    a second moto server, for tests that switch IAM enforcement on
#   BATCHOPS_TEST_LAMBDA_ENDPOINT  cargo lambda watch's URL (with --lambda)
#   BATCHOPS_TEST_S3_APART_ENDPOINT  with --s3-apart, a third moto server for the tests that can
#                                  send S3 there (the chaos run): moto answers on one core, so S3
#                                  on its own server lets a large run use two
#   AWS_ENDPOINT_URL               moto server's URL, so every SDK client and the CLI use it
#   AWS_ENDPOINT_URL_LAMBDA        cargo lambda watch's URL (with --lambda): Lambda Invoke goes there
#   AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  test values; AWS_PROFILE and
#                                  AWS_SESSION_TOKEN are unset, so nothing can reach a real account
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
with_lambda=0
s3_apart=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --lambda) with_lambda=1; shift ;;
        --s3-apart) s3_apart=1; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--lambda] -- COMMAND [ARGS...]" >&2; exit 2; }

cleanup() {
    local status=$?
    if ((with_lambda)); then "$SCRIPTS/lambda-watch.sh" stop || true; fi
    MOTO_SERVICE=moto-auth "$SCRIPTS/moto.sh" stop || true
    if ((s3_apart)); then MOTO_SERVICE=moto-s3 "$SCRIPTS/moto.sh" stop || true; fi
    "$SCRIPTS/moto.sh" stop || true
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
# No instance-metadata lookups on a machine without credentials.
export AWS_EC2_METADATA_DISABLED=true

BATCHOPS_TEST_ENDPOINT="$("$SCRIPTS/moto.sh" start)"
export BATCHOPS_TEST_ENDPOINT AWS_ENDPOINT_URL="$BATCHOPS_TEST_ENDPOINT"
# A second server whose IAM enforcement the job-role tests switch on (tests/roles.rs).
BATCHOPS_TEST_AUTH_ENDPOINT="$(MOTO_SERVICE=moto-auth "$SCRIPTS/moto.sh" start)"
export BATCHOPS_TEST_AUTH_ENDPOINT
if ((s3_apart)); then
    BATCHOPS_TEST_S3_APART_ENDPOINT="$(MOTO_SERVICE=moto-s3 "$SCRIPTS/moto.sh" start)"
    export BATCHOPS_TEST_S3_APART_ENDPOINT
fi
if ((with_lambda)); then
    # The functions under cargo lambda watch act on the stack `batchops local up` makes (the
    # CLI's test sends job commands through the control function: batchops --control-function).
    # Only lambda watch sees these settings; the tests' own processes do not.
    BATCHOPS_TEST_LAMBDA_ENDPOINT="$(
        BATCHOPS_TABLE=batchops-jobs \
        BATCHOPS_PLAN_QUEUE_URL="$BATCHOPS_TEST_ENDPOINT/123456789012/batchops-plan" \
        BATCHOPS_TASK_QUEUE_URL="$BATCHOPS_TEST_ENDPOINT/123456789012/batchops-tasks" \
        BATCHOPS_REPORT_QUEUE_URL="$BATCHOPS_TEST_ENDPOINT/123456789012/batchops-report" \
        BATCHOPS_SYSTEM_BUCKET=batchops-system \
        LAMBDA_WATCH_WARM="${LAMBDA_WATCH_WARM-example-task-handler control}" \
        "$SCRIPTS/lambda-watch.sh" start
    )"
    export BATCHOPS_TEST_LAMBDA_ENDPOINT AWS_ENDPOINT_URL_LAMBDA="$BATCHOPS_TEST_LAMBDA_ENDPOINT"
fi

"$@"
