//! Links the system espeak-ng library (Piper's phonemizer).
//!
//! The library search path comes from `ESPEAK_NG_LIB_DIR` when set, else from
//! `pkg-config --libs-only-L espeak-ng` when pkg-config knows it, else the linker's default
//! paths (Debian: `/usr/lib/x86_64-linux-gnu/libespeak-ng.so` from `libespeak-ng-dev`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ESPEAK_NG_LIB_DIR");
    if let Some(dir) = std::env::var_os("ESPEAK_NG_LIB_DIR").filter(|d| !d.is_empty()) {
        println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
    } else if let Ok(out) = Command::new("pkg-config")
        .args(["--libs-only-L", "espeak-ng"])
        .output()
    {
        if out.status.success() {
            for flag in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Some(dir) = flag.strip_prefix("-L") {
                    println!("cargo:rustc-link-search=native={dir}");
                }
            }
        }
    }
    println!("cargo:rustc-link-lib=dylib=espeak-ng");
}
