//! espeak-ng through its C API (linked by `build.rs`): text to IPA phonemes, clause by clause.
//!
//! espeak-ng keeps global state (the voice, its translator, static output buffers) and is not
//! thread-safe, so every call goes through one process-wide mutex, as Piper does. The library
//! is initialised on first use with its compiled-in data path (Debian:
//! `/usr/lib/x86_64-linux-gnu/espeak-ng-data`, package `espeak-ng-data`), which the
//! `ESPEAK_DATA_PATH` environment variable overrides.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

use crate::OnnxError;

/// `AUDIO_OUTPUT_SYNCHRONOUS` of `espeak_AUDIO_OUTPUT` (no audio device is opened).
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: report errors instead of calling `exit()`.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
/// `espeakCHARS_UTF8`.
const CHARS_UTF8: c_int = 1;
/// `espeakPHONEMES_IPA`: phoneme names in IPA.
const PHONEMES_IPA: c_int = 0x02;
/// `EE_OK` of `espeak_ERROR`.
const EE_OK: c_int = 0;

extern "C" {
    fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_TextToPhonemes(
        textptr: *mut *const c_void,
        textmode: c_int,
        phonememode: c_int,
    ) -> *const c_char;
}

/// What the mutex guards: espeak-ng's global state, as far as we track it.
struct State {
    initialised: bool,
    voice: Option<String>,
}

static ESPEAK: Mutex<State> = Mutex::new(State {
    initialised: false,
    voice: None,
});

/// The IPA phonemes of each of `clauses` in `voice` (an espeak-ng voice name such as
/// `en-us`), under one lock. Where espeak-ng splits a clause further (it ends clauses at
/// abbreviations such as "Dr."), the parts are joined with a space. A clause that yields
/// nothing (only symbols espeak-ng does not speak) gives an empty string.
pub(crate) fn phonemize_clauses(voice: &str, clauses: &[&str]) -> Result<Vec<String>, OnnxError> {
    // A panic while the lock was held cannot leave `State` inconsistent with espeak-ng in a
    // harmful way: at worst the voice is set again.
    let mut state = ESPEAK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !state.initialised {
        // SAFETY: called with the lock held; a null path selects the compiled-in data path.
        let rate = unsafe {
            espeak_Initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                std::ptr::null(),
                INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(OnnxError::Phonemizer(format!(
                "espeak_Initialize failed ({rate}); is espeak-ng-data installed (or \
                 ESPEAK_DATA_PATH set)?"
            )));
        }
        state.initialised = true;
        tracing::debug!(sample_rate = rate, "espeak-ng initialised");
    }
    if state.voice.as_deref() != Some(voice) {
        let name = CString::new(voice)
            .map_err(|_| OnnxError::Phonemizer(format!("invalid espeak voice name {voice:?}")))?;
        state.voice = None;
        // SAFETY: lock held; `name` is a valid NUL-terminated string that outlives the call.
        let rc = unsafe { espeak_SetVoiceByName(name.as_ptr()) };
        if rc != EE_OK {
            return Err(OnnxError::Phonemizer(format!(
                "espeak-ng has no voice {voice:?} (error {rc}); is espeak-ng-data installed?"
            )));
        }
        state.voice = Some(voice.to_owned());
    }
    Ok(clauses
        .iter()
        .map(|clause| text_to_phonemes(clause))
        .collect())
}

/// Runs `espeak_TextToPhonemes` over all of `text`. Call with the lock held and a voice set.
fn text_to_phonemes(text: &str) -> String {
    let mut out = String::new();
    let Ok(c_text) = CString::new(text.replace('\0', " ")) else {
        return out; // unreachable: NULs were replaced
    };
    let mut ptr: *const c_void = c_text.as_ptr().cast();
    // espeak-ng consumes at least one character per call; the bound only guards against a
    // library that would not advance.
    let mut calls_left = c_text.as_bytes().len() + 1;
    while !ptr.is_null() && calls_left > 0 {
        calls_left -= 1;
        let before = ptr;
        // SAFETY: `ptr` points into `c_text` (NUL-terminated, alive for the loop); espeak-ng
        // advances it within that buffer or sets it to null at the end. The result points to
        // espeak-ng's static buffer, valid until the next call, and is copied at once.
        let phonemes = unsafe { espeak_TextToPhonemes(&mut ptr, CHARS_UTF8, PHONEMES_IPA) };
        if !phonemes.is_null() {
            // SAFETY: a non-null result is a NUL-terminated string (see above).
            let part = unsafe { CStr::from_ptr(phonemes) }.to_string_lossy();
            let part = strip_language_switches(part.trim());
            if !part.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&part);
            }
        }
        if ptr == before {
            break;
        }
    }
    out
}

/// Removes espeak-ng's language-switch markers such as `(en)` or `(fr)`, which it inserts
/// around words it reads in another language (Piper drops them too).
fn strip_language_switches(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut rest = ipa;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_switch_markers_are_removed() {
        assert_eq!(strip_language_switches("(fr)ʒə(en) sˈeɪ"), "ʒə sˈeɪ");
        assert_eq!(strip_language_switches("həlˈoʊ"), "həlˈoʊ");
        assert_eq!(strip_language_switches("a ( b ) (c"), "a ( b ) (c");
    }
}
