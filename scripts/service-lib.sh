# Helpers shared by scripts/moto.sh and scripts/lambda-watch.sh (sourced, not run).
# A service is a background process with a pid file, a log file and a URL file under .tmp/.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STATE_DIR="${BATCHOPS_STATE_DIR:-$ROOT/.tmp}"

log() { printf '%s: %s\n' "$SERVICE" "$*" >&2; }
die() { printf '%s: error: %s\n' "$SERVICE" "$*" >&2; exit 1; }

python_bin() {
    if [[ -x "$VENV/bin/python" ]]; then echo "$VENV/bin/python"; else echo python3; fi
}

# A free TCP port on loopback, chosen by the kernel.
free_port() {
    "$(python_bin)" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# True when something answers HTTP at $1 (any status code counts: the server is up).
answers() {
    "$(python_bin)" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
except urllib.error.HTTPError:
    pass
PY
}

pid_file() { echo "$STATE_DIR/$SERVICE.pid"; }
url_file() { echo "$STATE_DIR/$SERVICE.url"; }
log_file() { echo "$STATE_DIR/$SERVICE.log"; }

running_pid() {
    local pid
    [[ -f "$(pid_file)" ]] || return 1
    pid="$(cat "$(pid_file)")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# wait_until_up URL TIMEOUT_SECONDS PID: polls URL until it answers, the process dies or time runs out.
wait_until_up() {
    local url="$1" timeout="$2" pid="$3" waited=0
    until answers "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$(log_file)" >&2 || true
            die "exited before answering at $url (log: $(log_file))"
        fi
        if ((waited >= timeout)); then
            tail -n 40 "$(log_file)" >&2 || true
            stop_service
            die "no answer at $url after ${timeout}s (log: $(log_file))"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# Starts "$@" in its own process group (so stop reaches its children too) and records its pid.
start_background() {
    mkdir -p "$STATE_DIR"
    if command -v setsid >/dev/null 2>&1; then
        setsid "$@" >"$(log_file)" 2>&1 </dev/null &
    else
        "$@" >"$(log_file)" 2>&1 </dev/null &
    fi
    echo $! >"$(pid_file)"
}

# The pids of every descendant of $1 (children of cargo lambda watch run in their own sessions,
# so signalling the process group alone would miss them).
descendants() {
    local children child
    children="$(ps -eo pid=,ppid= | awk -v p="$1" '$2 == p { print $1 }')"
    for child in $children; do
        echo "$child"
        descendants "$child"
    done
}

# Stops the recorded process, its process group and its descendants: TERM, then KILL after a
# grace period.
stop_service() {
    local pid tree
    if pid="$(running_pid)"; then
        tree="$(descendants "$pid")"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        # shellcheck disable=SC2086
        [[ -z "$tree" ]] || kill -TERM $tree 2>/dev/null || true
        log "stopped (pid $pid)"
    fi
    rm -f "$(pid_file)" "$(url_file)"
}
