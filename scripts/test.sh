#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit and in-process tests (mock engine),
# end-to-end tests against the real binary with the sample models, and the official `openai`
# Python client against the gateway, validated with OpenAI's OpenAPI spec.
source "$(dirname "$0")/common.sh"
ensure_system_packages
build_release
fetch_models

if cargo fmt --version >/dev/null 2>&1; then
    log "cargo fmt --check"
    cargo fmt --all -- --check
else
    log "rustfmt is not installed: skipping the format check"
fi

if cargo clippy --version >/dev/null 2>&1; then
    log "cargo clippy"
    cargo clippy --release --locked --workspace --all-targets -- -D warnings
else
    log "clippy is not installed: skipping lints"
fi

# The Python virtualenv lives in the user's cache, keyed by the pinned requirements, so a
# clean clone reuses it.
REQS="$ROOT/tests/python/requirements.txt"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/venv-$(sha256sum "$REQS" | cut -c1-12)"
if [ ! -x "$VENV/bin/pytest" ]; then
    log "creating the test virtualenv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet -r "$REQS"
fi
# Built before `cargo test`: Rust tests that compare against Python references (numpy, MLX)
# run it (they find it by the same requirements hash).

log "cargo test (unit, in-process, end-to-end)"
cargo test --release --locked --workspace

log "openai client tests (pytest)"
SWITCHYARD_BIN="$SWITCHYARD_BIN" "$VENV/bin/python" -m pytest -q "$ROOT/tests/python"
