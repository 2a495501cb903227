#!/usr/bin/env bash
# moto server, the local AWS (S3, SQS, DynamoDB, STS, IAM), on a free loopback port.
#
#   scripts/moto.sh start    start it (or reuse the running one), wait until it answers, print its URL
#   scripts/moto.sh stop     stop it
#   scripts/moto.sh url      print the URL of the running server
#
# State: .tmp/moto.url, .tmp/moto.pid, .tmp/moto.log. MOTO_PORT picks the port instead of a free one.
# MOTO_SERVICE names a second, independent server (its state files take that name): the tests of
# job roles run one with IAM enforcement switched on.
#
# The server is tests/common/moto_server.py when it exists: moto with DynamoDB requests run one at
# a time, as DynamoDB's per-request atomicity needs (plain moto_server can lose concurrent updates).
# MOTO_SERVER_SCRIPT chooses another script; MOTO_SERVER_SCRIPT= (empty) runs plain moto_server.
set -euo pipefail
SERVICE="${MOTO_SERVICE:-moto}"
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

start() {
    local pid port url
    if pid="$(running_pid)" && [[ -f "$(url_file)" ]] && answers "$(cat "$(url_file)")"; then
        cat "$(url_file)"
        return 0
    fi
    stop_service
    [[ -x "$VENV/bin/moto_server" ]] || die "moto_server is not installed: run scripts/bootstrap.sh"
    port="${MOTO_PORT:-$(free_port)}"
    url="http://127.0.0.1:$port"
    local script="${MOTO_SERVER_SCRIPT-$ROOT/tests/common/moto_server.py}"
    if [[ -n "$script" && -f "$script" ]]; then
        start_background "$VENV/bin/python" "$script" -H 127.0.0.1 -p "$port"
    else
        start_background "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
    fi
    wait_until_up "$url/moto-api/" "${MOTO_START_TIMEOUT:-60}" "$(cat "$(pid_file)")"
    echo "$url" >"$(url_file)"
    log "running at $url (pid $(cat "$(pid_file)"))"
    echo "$url"
}

case "${1:-}" in
    start) start ;;
    stop) stop_service ;;
    url) [[ -f "$(url_file)" ]] && running_pid >/dev/null || die "not running"; cat "$(url_file)" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
