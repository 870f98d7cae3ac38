#!/usr/bin/env bash
# Fuzzes the running server with Schemathesis (all checks, enabled in schemathesis.toml)
# against its own OpenAPI document.
#
# Starts the debug binary on a free 127.0.0.1 port with a fresh SQLite data dir, reads the
# API key that the first start prints, waits for /healthz, runs `schemathesis run` with
# every check, stops the server and exits non-zero on any failure (a 5xx, a response that
# does not match the documented schema, an undocumented status or content type, …).
#
# The data comes from the schema alone (no dictionaries, no hooks). .ci/schemathesis.toml
# beside this script turns off only `positive_data_acceptance`, and only for the operations
# whose acceptance depends on something no schema can state (a PDF's content, an issued
# cursor, the return-URL allowlist), each with its reason.
#
# Environment (all optional):
#   CARGO_TARGET_DIR            where the debug binary is (default ~/.cache/signeur-target)
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default 200: one to two
#                               minutes on 2 cores)
#   SCHEMATHESIS_SEED           Hypothesis seed, to replay a run (default: random, printed)
#   SCHEMATHESIS_REPORT_DIR     if set, JUnit + NDJSON reports are written there
#   SCHEMATHESIS_KEEP_TMP=1     keep the data dir and server logs after the run
#   SCHEMATHESIS_EXTRA_ARGS     more `schemathesis run` options, split on spaces (e.g.
#                               "--continue-on-failure --output-sanitize false")
set -euo pipefail

ST_VERSION=4.32.5
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/signeur-target}"
bin="$target_dir/debug/signeur"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-200}"
seed="${SCHEMATHESIS_SEED:-$(( (RANDOM << 15) | RANDOM ))}"

log() { echo "schemathesis.sh: $*" >&2; }

# --- Schemathesis, pinned ------------------------------------------------------------------
installed="$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
if [ "$installed" != "$ST_VERSION" ]; then
    log "installing schemathesis==$ST_VERSION (found: ${installed:-none})"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# --- The server binary ---------------------------------------------------------------------
if [ ! -x "$bin" ]; then
    log "$bin is missing; building it"
    (cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo build --workspace --locked)
fi

# --- Start it on a free loopback port with an empty database -------------------------------
tmp="$(mktemp -d -t signeur-schemathesis.XXXXXX)"
server_pid=""
cleanup() {
    local rc=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -s "$tmp/server.err" ]; then
        log "last server log lines:"
        tail -n 40 "$tmp/server.err" >&2 || true
    fi
    if [ "${SCHEMATHESIS_KEEP_TMP:-0}" = 1 ]; then
        log "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Only this script's settings: no SIGNEUR_* from the caller's environment (a DATABASE_URL
# or STORAGE_URL there would point the fuzzer at real data) and no signeur.toml from cwd.
for v in $(compgen -e | grep '^SIGNEUR_' || true); do unset "$v"; done

port=""
for attempt in 1 2 3; do
    port="$(free_port)"
    base="http://127.0.0.1:$port"
    : >"$tmp/server.out"
    : >"$tmp/server.err"
    # The fuzzer sends far faster than the default rate limits allow an organization: limits
    # too high to refuse (still checked, so every answer carries the RateLimit headers).
    SIGNEUR_CONFIG="$tmp/no-such-signeur.toml" \
    SIGNEUR_DATA_DIR="$tmp/data" \
    SIGNEUR_LISTEN="127.0.0.1:$port" \
    SIGNEUR_RATE_LIMIT_PER_SEC=1000000000 \
    SIGNEUR_RATE_LIMIT_BURST=1000000000 \
    SIGNEUR_PAGE_RATE_LIMIT_PER_MIN=1000000000 \
    NO_COLOR=1 \
        "$bin" serve >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    up=""
    for _ in $(seq 300); do
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        if curl -fsS --max-time 2 "$base/healthz" >/dev/null 2>&1; then up=1; break; fi
        sleep 0.1
    done
    if [ -n "$up" ]; then break; fi
    log "server did not come up on port $port (attempt $attempt)"
    tail -n 20 "$tmp/server.err" >&2 || true
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    rm -rf "$tmp/data"
done
if [ -z "$server_pid" ]; then
    log "giving up: the server never answered /healthz"
    exit 1
fi

api_key="$(sed -n 's/^api_key: \(sgn_live_[^[:space:]]*\)[[:space:]]*$/\1/p' "$tmp/server.out" | head -n 1)"
if [ -z "$api_key" ]; then
    log "no 'api_key: sgn_live_…' line on the server's stdout:"
    cat "$tmp/server.out" >&2
    exit 1
fi
log "server up at $base (pid $server_pid), seed $seed, $max_examples examples per operation"

# --- Fuzz ---------------------------------------------------------------------------------
report_args=()
if [ -n "${SCHEMATHESIS_REPORT_DIR:-}" ]; then
    mkdir -p "$SCHEMATHESIS_REPORT_DIR"
    report_args=(--report junit,ndjson --report-dir "$SCHEMATHESIS_REPORT_DIR")
fi

st_rc=0
# cwd = $tmp so that nothing (e.g. a .hypothesis directory) lands in the work tree.
# One worker: with two, Hypothesis' concurrent `ast.parse` calls (describing strategies)
# now and then hit CPython 3.11's thread-unsafe AST recursion counter (python/cpython#106905)
# and the run dies with "SystemError: AST constructor recursion depth mismatch".
# Every check is on through `[checks] enabled = true` in schemathesis.toml, not `--checks all`:
# checks named on the command line would override the per-operation exceptions there.
(
    cd "$tmp"
    export PYTHONDONTWRITEBYTECODE=1
    python3 -m schemathesis.cli --config-file "$here/schemathesis.toml" run \
        "$base/api/v1/openapi.json" \
        --url "$base" \
        --header "Authorization: Bearer $api_key" \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 30 \
        --generation-database none \
        --max-redirects 0 \
        --no-color \
        ${SCHEMATHESIS_EXTRA_ARGS:-} \
        "${report_args[@]}"
) 2>&1 | tee "$tmp/schemathesis.out" || st_rc=$?

# A plain closing line for CI, from Schemathesis' "Test cases:" summary, e.g.
# "3162 generated, 3 found 3 unique failures" or "3010 generated, 3010 passed, 10 skipped".
summary="$(grep -A1 '^Test cases:' "$tmp/schemathesis.out" | tail -n 1 || true)"
generated="$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' <<<"$summary")"
if [ -n "$generated" ]; then
    found="$(sed -n 's/.* \([0-9][0-9]*\) found .*/\1/p' <<<"$summary")"
    unique="$(sed -n 's/.* \([0-9][0-9]*\) unique failure.*/\1/p' <<<"$summary")"
    echo "schemathesis: $(( generated - ${found:-0} )) passed, ${unique:-0} failed"
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the server died during the run"
    [ "$st_rc" -ne 0 ] || st_rc=1
fi
if [ "$st_rc" -ne 0 ]; then
    log "FAILED (schemathesis exit $st_rc); replay with SCHEMATHESIS_SEED=$seed"
    exit "$st_rc"
fi
log "passed"
