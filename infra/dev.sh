#!/usr/bin/env bash
# Developer entry point. Everything a fresh machine needs is installed by `setup`, which
# `run` and `test` call first (and which is quick once done).
#
#   infra/dev.sh run       the whole backend locally (private PostgreSQL, every route, queues, schedules)
#   infra/dev.sh watch     cargo lambda watch: the real function binaries against the running local runtime
#   infra/dev.sh test      rustfmt's and clippy's checks, the whole test suite, the API contract checks, cfn-lint
#   infra/dev.sh contract  only the API contract checks (the OpenAPI document, the TypeScript client)
#   infra/dev.sh bench     the benchmarks whose figures are in the README
#   infra/dev.sh deploy-tools  cargo-lambda and the SAM CLI, for sam build / sam deploy
#   infra/dev.sh setup     only the installs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
# signalhouse: the official SDK, driven by the SignalHouse contract test.
# openapi-spec-validator: checks the API's OpenAPI document (0.x, so the minor is the major).
# cargo-lambda: its wheel ships the binary; `watch` and the test of the developer loop run it.
PY_TOOLS=("moto[server]>=5.1,<6" "cfn-lint>=1.20,<2" "signalhouse>=1.5,<2" "openapi-spec-validator>=0.9,<0.10"
  "cargo-lambda>=1.8,<2")

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

have_pg() {
  [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
  command -v initdb >/dev/null 2>&1
}

setup_postgres() {
  have_pg && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing PostgreSQL server binaries (apt-get install postgresql)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # Debian starts a system cluster; ours are private, so stop it to free memory and 5432.
    (service postgresql stop || true) >/dev/null 2>&1
  else
    echo "PostgreSQL server binaries are missing: install the 'postgresql' package (or set PG_BIN)." >&2
    exit 1
  fi
}

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import moto, cfnlint, signalhouse, openapi_spec_validator" >/dev/null 2>&1 \
    || [ ! -x "$VENV/bin/cargo-lambda" ]; then
    log "installing ${PY_TOOLS[*]} into .venv"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  fi
}

setup_rust() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked -q
  fi
}

# The TypeScript client check's tools, at the versions clients/package-lock.json pins.
setup_node() {
  local lock="$ROOT/clients/package-lock.json" installed="$ROOT/clients/node_modules/.package-lock.json"
  [ -f "$installed" ] && [ ! "$lock" -nt "$installed" ] && return 0
  if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js with npm (the TypeScript client check needs it)." >&2
    exit 1
  fi
  log "installing openapi-typescript and typescript into clients/node_modules (npm ci)"
  npm ci --prefix "$ROOT/clients" --no-audit --no-fund --loglevel=error
}

setup() {
  setup_postgres
  setup_python
  setup_node
  setup_rust
}

# The API contract: the OpenAPI document in $1 passes a standard validator, and the TypeScript
# client openapi-typescript generates from it type-checks under --strict (clients/check.ts).
check_contract() {
  local doc=$1
  log "openapi-spec-validator $doc"
  "$VENV/bin/openapi-spec-validator" "$doc"
  log "openapi-typescript $doc -o target/api.d.ts; tsc -p clients (strict)"
  "$ROOT/clients/node_modules/.bin/openapi-typescript" "$doc" -o target/api.d.ts
  "$ROOT/clients/node_modules/.bin/tsc" -p "$ROOT/clients"
}

stop_test_services() {
  local pgdir="$ROOT/target/testkit/pg"
  [ -f "$ROOT/target/testkit/pg-dir" ] && pgdir=$(cat "$ROOT/target/testkit/pg-dir")
  if [ -f "$pgdir/data/postmaster.pid" ]; then
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort | tail -n 1)
    bin=${PG_BIN:-$bin}
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$bin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
    else
      "$bin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$pgdir" "$ROOT/target/testkit/pg-dir"
  local motopids="$ROOT/target/testkit/moto/pids"
  if [ -f "$motopids" ]; then
    while read -r pid; do kill "$pid" >/dev/null 2>&1 || true; done < "$motopids"
  fi
  rm -rf "$ROOT/target/testkit/moto"
}

# What `sam build` and `sam deploy` need, beside the test tools: cargo-lambda (which builds the
# arm64 `bootstrap`s with zig) and the SAM CLI, into .venv. Not part of `test`: CI never deploys.
setup_deploy() {
  setup_python
  log "installing cargo-lambda and aws-sam-cli into .venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check "cargo-lambda>=1.8,<2" "aws-sam-cli>=1.140,<2"
  log "done: export PATH=\"$VENV/bin:\$PATH\" and run sam build (see README, Deploying with SAM)"
}

cmd=${1:-help}
case "$cmd" in
  setup)
    setup
    ;;
  deploy-tools)
    setup_deploy
    ;;
  run)
    setup_postgres
    log "starting the local runtime (first build takes a couple of minutes)"
    exec cargo run -q -p nextier-local
    ;;
  watch)
    # The local runtime owns the database and writes what a lone function needs to join it.
    setup_python
    envfile="${NEXTIER_HOME:-$ROOT/.local}/watch.env"
    if [ ! -f "$envfile" ] || ! "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' \
      "$(sed -n 's/^LOCAL_PUBLIC_URL=//p' "$envfile")/health" >/dev/null 2>&1; then
      echo "The local runtime is not running: start it first with infra/dev.sh run (in another terminal)." >&2
      exit 1
    fi
    log "cargo lambda watch on 127.0.0.1:${WATCH_PORT:-9000} (each function builds and starts on its first request)"
    exec "$VENV/bin/cargo-lambda" lambda watch --invoke-address 127.0.0.1 --invoke-port "${WATCH_PORT:-9000}" \
      --env-file "$envfile" "${@:2}"
    ;;
  test)
    setup
    export MOTO_SERVER="$VENV/bin/moto_server"
    export CARGO_LAMBDA="$VENV/bin/cargo-lambda"
    # The contract test must run here, never skip: it fails without the SDK when this is set.
    export SIGNALHOUSE_SDK_PYTHON="$VENV/bin/python"
    if cargo fmt --version >/dev/null 2>&1; then
      log "cargo fmt --all -- --check"
      cargo fmt --all -- --check
    else
      log "rustfmt is not installed (rustup component add rustfmt): formatting not checked"
    fi
    if cargo clippy --version >/dev/null 2>&1; then
      log "cargo clippy --workspace --tests -- -D warnings"
      cargo clippy --workspace --tests -- -D warnings
    else
      log "clippy is not installed (rustup component add clippy): lints not checked"
    fi
    stop_test_services
    trap stop_test_services EXIT
    # A test writes the document /openapi.json serves to target/openapi.json.
    rm -f target/openapi.json target/api.d.ts
    log "cargo nextest run --workspace"
    cargo nextest run --workspace --no-fail-fast
    check_contract target/openapi.json
    log "cfn-lint template.yaml infra/*.yaml"
    "$VENV/bin/cfn-lint" template.yaml infra/*.yaml
    log "all tests passed"
    ;;
  contract)
    setup_python
    setup_node
    log "cargo run -p nextier-local -- openapi target/openapi.json"
    mkdir -p target
    cargo run -q -p nextier-local -- openapi target/openapi.json
    check_contract target/openapi.json
    ;;
  bench)
    setup_postgres
    cargo build --release -p api-admin -p nextier-bench
    exec "$ROOT/target/release/nextier-bench" "${@:2}"
    ;;
  *)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac
