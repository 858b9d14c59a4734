# Sourced by scripts/common.sh (and by hand before `cargo bench`): builds ggml, inside
# llama.cpp and whisper.cpp, for the instruction sets of the CPU this machine has.
#
# llama-cpp-sys-2 and whisper-rs-sys build ggml for AVX2 unless told otherwise. They pass every
# GGML_* environment variable to ggml's CMake, so this exports the options for AVX-512, VNNI,
# BF16 and AMX where /proc/cpuinfo lists them. On a CPU with AMX (Xeon Sapphire Rapids and
# later) llama.cpp then repacks Q4_0/Q4_1/Q8_0/K-quant weights for the AMX tiles: on the
# standard 2-core box SmolLM2 decodes ~2x faster, and 8 sequences in one batch ~3x faster
# than one (see docs/BENCHMARKS.md).
#
# The binary then runs only on CPUs with the same instruction sets. To build one for other
# machines (a container image, a copy to another box), set SWITCHYARD_PORTABLE_BUILD=1. A
# GGML_* variable that is already set is left as it is. Cargo rebuilds ggml when these
# change, so a target/ folder carried to another CPU is rebuilt rather than crashing.

switchyard_native_cpu_flags() {
    [ "${SWITCHYARD_PORTABLE_BUILD:-0}" = "1" ] && return 0
    [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ] || return 0
    local flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
    enable() { [ -n "${!1:-}" ] || export "$1=ON"; }
    # ggml's GGML_AVX512 compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
    if has avx512f avx512cd avx512vl avx512dq avx512bw; then
        enable GGML_AVX512
        has avx512vbmi && enable GGML_AVX512_VBMI
        has avx512_vnni && enable GGML_AVX512_VNNI
        has avx512_bf16 && enable GGML_AVX512_BF16
        # ggml's AMX kernels also need AVX-512 VNNI.
        if has amx_tile amx_int8 avx512_vnni; then
            enable GGML_AMX_TILE
            enable GGML_AMX_INT8
            has amx_bf16 && enable GGML_AMX_BF16
        fi
    fi
    has avx_vnni && enable GGML_AVX_VNNI
    unset -f has enable
    return 0
}
switchyard_native_cpu_flags
