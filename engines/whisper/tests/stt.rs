//! End-to-end speech-to-text with the real Whisper tiny.en model.
//!
//! Needs the CTranslate2 model `whisper-tiny.en` in `$SWITCHYARD_MODELS_DIR` (or the user cache
//! `switchyard/models`); without it the tests print a skip note and pass, unless `CI` is set.
//! Needs `espeak-ng` to synthesise speech. The worker binary must be built (same profile):
//! `cargo build --release -p switchyard-whisper-worker`; if it is missing the tests build it
//! through `$CARGO`. The ggml model is converted from the CTranslate2 one by
//! `switchyard_converter::ct2_whisper::convert` into cargo's test temp dir.
//!
//! Run: `cargo test --release -p switchyard-engine-whisper` (the 60 s real-time-factor
//! measurement is `--ignored`: run it alone, on an idle machine).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use switchyard_core::{CopyLedger, HeapAlloc, Tensor};
use switchyard_testkit::speech::SENTENCES;
use switchyard_testkit::wer::{edit_distance, words};

/// espeak-ng speech for `text` at 16 kHz (these tests need espeak-ng).
fn speak(text: &str) -> Vec<f32> {
    switchyard_testkit::speech::speak(text).expect("espeak-ng is needed for these tests")
}
use switchyard_engine_whisper::{
    locate_worker, shm_backing, ShmAlloc, SttError, TranscribeOptions, WhisperConfig, WhisperHost,
};

struct Fixture {
    model: PathBuf,
    worker: PathBuf,
}

fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Newest modification time of the worker's sources (its crate and the client crate).
fn newest_source() -> std::time::SystemTime {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(m);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for dir in [root.join("src"), root.join("worker/src")] {
        walk(&dir, &mut newest);
    }
    for file in [root.join("Cargo.toml"), root.join("worker/Cargo.toml")] {
        if let Ok(m) = std::fs::metadata(file).and_then(|m| m.modified()) {
            newest = newest.max(m);
        }
    }
    newest
}

/// The worker binary. An explicit `$SWITCHYARD_WHISPER_WORKER` is used as is; otherwise the
/// binary next to this test's target directory is used if it is newer than its sources, and
/// (re)built through `$CARGO` (same target dir and profile) if it is missing or stale.
fn worker_exe() -> PathBuf {
    if std::env::var_os("SWITCHYARD_WHISPER_WORKER").is_some() {
        return locate_worker(None).expect("SWITCHYARD_WHISPER_WORKER");
    }
    if let Ok(p) = locate_worker(None) {
        let built = std::fs::metadata(&p).and_then(|m| m.modified());
        if built.is_ok_and(|b| b >= newest_source()) {
            return p;
        }
    }
    // target/<profile>/deps/<test> → target/<profile> → target
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    eprintln!(
        "building switchyard-whisper-worker into {}",
        target_dir.display()
    );
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        // The same package set as the documented build, so cargo reuses its artifacts
        // (another set can unify dependency features differently and rebuild whisper.cpp).
        .args([
            "build",
            "-p",
            "switchyard-engine-whisper",
            "-p",
            "switchyard-whisper-worker",
        ])
        .args(["-p", "switchyard-converter", "--target-dir"])
        .arg(target_dir)
        .current_dir(workspace_root());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("run cargo");
    assert!(
        status.success(),
        "building switchyard-whisper-worker failed"
    );
    locate_worker(None).expect("worker after build")
}

/// Converted model + worker, or `None` (skip) when the CTranslate2 model is absent.
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let ct2 = models_dir().join("whisper-tiny.en");
            if !ct2.join("model.bin").is_file() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI: whisper-tiny.en model missing in {}",
                    ct2.display()
                );
                eprintln!(
                    "SKIP: whisper-tiny.en not found in {} (fetch the models first)",
                    ct2.display()
                );
                return None;
            }
            // One fixed path: the converter writes a temp file and renames it, so concurrent
            // test processes never see a partial model (a running worker keeps its inode).
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("whisper-tiny.en.ggml.bin");
            let t = Instant::now();
            let report = switchyard_converter::ct2_whisper::convert(&ct2, &out).expect("convert");
            eprintln!(
                "converted {} tensors, {} bytes in {:?}",
                report.tensors,
                report.bytes,
                t.elapsed()
            );
            Some(Fixture {
                model: out,
                worker: worker_exe(),
            })
        })
        .as_ref()
}

fn config(f: &Fixture) -> WhisperConfig {
    let mut c = WhisperConfig::new(&f.model);
    c.worker_exe = Some(f.worker.clone());
    c.threads = 2;
    c
}

/// One host shared by the tests that do not kill their worker.
fn shared_host() -> Option<&'static WhisperHost> {
    static HOST: OnceLock<Option<WhisperHost>> = OnceLock::new();
    HOST.get_or_init(|| fixture().map(|f| WhisperHost::start(config(f)).expect("start host")))
        .as_ref()
}

fn shm_tensor(samples: &[f32]) -> Tensor {
    Tensor::build::<f32>(&ShmAlloc, &[samples.len()], |x| x.copy_from_slice(samples)).unwrap()
}

#[test]
fn espeak_sentences_transcribe_with_low_wer() {
    let Some(host) = shared_host() else { return };
    let (mut errors, mut total) = (0, 0);
    for sentence in SENTENCES {
        let audio = shm_tensor(&speak(sentence));
        let ledger = CopyLedger::new();
        let t = host
            .transcribe(&audio, &TranscribeOptions::default(), &ledger)
            .unwrap();
        let (r, h) = (words(sentence), words(&t.text));
        let e = edit_distance(&r, &h);
        eprintln!("[{e}/{}] {sentence:?} -> {:?}", r.len(), t.text);
        errors += e;
        total += r.len();
        assert_eq!(ledger.bytes(), 0);
        assert!(!t.segments.is_empty());
        assert!(t.segments.iter().all(|s| s.end_s >= s.start_s));
    }
    let wer = errors as f64 / total as f64;
    eprintln!(
        "WER {:.2}% ({errors} errors / {total} words, {} sentences)",
        wer * 100.0,
        SENTENCES.len()
    );
    assert!(wer <= 0.10, "WER {:.1}% > 10%", wer * 100.0);
}

#[test]
fn shm_audio_and_views_cross_without_copies() {
    let Some(host) = shared_host() else { return };
    let speech = speak(SENTENCES[0]);
    let pad = 8000;
    // Speech preceded by half a second of noise-free silence we then cut away with `narrow`.
    let mut padded = vec![0.0f32; pad];
    padded.extend_from_slice(&speech);
    let whole = shm_tensor(&padded);
    let ledger = CopyLedger::new();
    let t = host
        .transcribe(&whole, &TranscribeOptions::default(), &ledger)
        .unwrap();
    assert!(t.zero_copy);
    let view = whole.narrow(pad, padded.len()).unwrap();
    assert_eq!(view.byte_offset(), pad * 4);
    assert!(shm_backing(&view).is_some());
    let tv = host
        .transcribe(&view, &TranscribeOptions::default(), &ledger)
        .unwrap();
    assert!(tv.zero_copy);
    assert_eq!(ledger.bytes(), 0, "shared-memory audio must not be copied");
    assert_eq!(ledger.summary().copies, 0);
    assert!(
        words(&tv.text).contains(&"fox".to_string()),
        "{:?}",
        tv.text
    );

    // Heap audio is copied once into shared memory, and the copy is counted.
    let heap =
        Tensor::build::<f32>(&HeapAlloc, &[speech.len()], |x| x.copy_from_slice(&speech)).unwrap();
    let ledger = CopyLedger::new();
    let th = host
        .transcribe(&heap, &TranscribeOptions::default(), &ledger)
        .unwrap();
    assert!(!th.zero_copy);
    let s = ledger.summary();
    assert_eq!((s.copies, s.bytes), (1, speech.len() as u64 * 4));
    assert_eq!(s.by_reason["ipc"], speech.len() as u64 * 4);
    assert_eq!(words(&th.text), words(&tv.text));
}

#[test]
fn bad_audio_is_rejected_with_clear_errors() {
    let Some(host) = shared_host() else { return };
    let ledger = CopyLedger::new();
    let opts = TranscribeOptions::default();
    let empty = Tensor::build::<f32>(&ShmAlloc, &[0], |_| {}).unwrap();
    let err = host.transcribe(&empty, &opts, &ledger).unwrap_err();
    assert!(matches!(err, SttError::InvalidAudio(_)), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");

    let mut samples = speak(SENTENCES[6]);
    samples[1000] = f32::NAN;
    let err = host
        .transcribe(&shm_tensor(&samples), &opts, &ledger)
        .unwrap_err();
    assert!(err.to_string().contains("sample 1000 is NaN"), "{err}");

    let pcm = Tensor::from_vec(vec![0i16; 1600], &[1600]).unwrap();
    let err = host.transcribe(&pcm, &opts, &ledger).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");

    let stereo = Tensor::from_vec(vec![0f32; 3200], &[1600, 2]).unwrap();
    let err = host.transcribe(&stereo, &opts, &ledger).unwrap_err();
    assert!(err.to_string().contains("mono"), "{err}");

    // A request the worker itself refuses keeps the worker alive.
    let pid = host.worker_pid();
    let hot = TranscribeOptions {
        temperature: 5.0,
        ..TranscribeOptions::default()
    };
    let err = host
        .transcribe(&shm_tensor(&speak(SENTENCES[6])), &hot, &ledger)
        .unwrap_err();
    assert!(matches!(err, SttError::Worker { .. }), "{err}");
    assert!(err.to_string().contains("temperature"), "{err}");
    assert_eq!(host.worker_pid(), pid);
    assert_eq!(ledger.bytes(), 0);
}

#[test]
fn missing_worker_and_bad_model_are_clear_errors() {
    let Some(f) = fixture() else { return };
    let mut c = config(f);
    c.worker_exe = Some(PathBuf::from("/nonexistent/switchyard-whisper-worker"));
    let err = WhisperHost::start(c).unwrap_err();
    assert!(matches!(err, SttError::WorkerNotFound { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.bin");
    std::fs::write(&bogus, b"not a model").unwrap();
    let mut c = config(f);
    c.model_path = bogus;
    let err = WhisperHost::start(c).unwrap_err();
    assert!(matches!(err, SttError::Startup { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("bogus.bin") && msg.contains("cannot load"),
        "{msg}"
    );
}

/// ~60 s of speech: the sentences, with pauses, repeated until a minute is reached.
fn minute_of_speech() -> (Vec<f32>, Vec<String>) {
    let mut audio = Vec::new();
    let mut reference = Vec::new();
    'outer: loop {
        for s in SENTENCES {
            if audio.len() >= 16000 * 60 {
                break 'outer;
            }
            audio.extend(speak(s));
            audio.extend(std::iter::repeat_n(0.0, 16000 * 7 / 10));
            reference.extend(words(s));
        }
    }
    (audio, reference)
}

#[test]
fn killed_worker_fails_its_request_and_the_next_one_works() {
    let Some(f) = fixture() else { return };
    let host = WhisperHost::start(config(f)).unwrap();
    let first_pid = host.worker_pid().unwrap();
    let (audio, _) = minute_of_speech();
    let audio = shm_tensor(&audio);
    let err = std::thread::scope(|s| {
        let job =
            s.spawn(|| host.transcribe(&audio, &TranscribeOptions::default(), &CopyLedger::new()));
        // Let the request reach the worker, then kill it mid-inference.
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            !job.is_finished(),
            "60 s of audio should take longer than 0.7 s"
        );
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(first_pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        job.join().unwrap().unwrap_err()
    });
    let msg = err.to_string();
    eprintln!("in-flight request: {msg}");
    assert!(matches!(err, SttError::WorkerDied { .. }), "{msg}");
    assert!(msg.contains("died") && msg.contains("signal 9"), "{msg}");
    assert_eq!(host.worker_pid(), None);

    let short = shm_tensor(&speak(SENTENCES[1]));
    let t = host
        .transcribe(&short, &TranscribeOptions::default(), &CopyLedger::new())
        .unwrap();
    assert!(
        words(&t.text).contains(&"store".to_string()),
        "{:?}",
        t.text
    );
    assert_eq!(host.starts(), 2);
    let second_pid = host.worker_pid().unwrap();
    assert_ne!(second_pid, first_pid);

    // A worker that dies while idle is replaced before the next request: no error at all.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(second_pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = host
        .transcribe(&short, &TranscribeOptions::default(), &CopyLedger::new())
        .unwrap();
    assert!(
        words(&t.text).contains(&"store".to_string()),
        "{:?}",
        t.text
    );
    assert_eq!(host.starts(), 3);
}

#[test]
fn concurrent_callers_are_served() {
    let Some(host) = shared_host() else { return };
    let results: Vec<_> = std::thread::scope(|s| {
        let jobs: Vec<_> = SENTENCES[..3]
            .iter()
            .map(|text| {
                s.spawn(move || {
                    let audio = shm_tensor(&speak(text));
                    host.transcribe(&audio, &TranscribeOptions::default(), &CopyLedger::new())
                        .map(|t| (text, t.text))
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for r in results {
        let (text, got) = r.unwrap();
        let (r, h) = (words(text), words(&got));
        assert!(edit_distance(&r, &h) * 2 <= r.len(), "{text:?} -> {got:?}");
    }
}

/// Real-time factor on 2 threads for ~60 s of speech. Run alone on an idle machine:
/// `cargo test --release -p switchyard-engine-whisper --test stt -- --ignored --nocapture`.
#[test]
#[ignore = "timing measurement; run alone on an idle machine"]
fn real_time_factor_60s_two_threads() {
    let Some(f) = fixture() else { return };
    let host = WhisperHost::start(config(f)).unwrap();
    let (audio, reference) = minute_of_speech();
    let seconds = audio.len() as f64 / 16000.0;
    let audio = shm_tensor(&audio);
    let threads = std::env::var("SWITCHYARD_RTF_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let opts = TranscribeOptions {
        threads: Some(threads),
        ..TranscribeOptions::default()
    };
    // Warm-up (page cache, allocator), then measure.
    host.transcribe(
        &audio.narrow(0, 16000 * 5).unwrap(),
        &opts,
        &CopyLedger::new(),
    )
    .unwrap();
    let ledger = CopyLedger::new();
    let started = Instant::now();
    let t = host.transcribe(&audio, &opts, &ledger).unwrap();
    let wall = started.elapsed().as_secs_f64();
    let wer = edit_distance(&reference, &words(&t.text)) as f64 / reference.len() as f64;
    eprintln!(
        "RTF {:.3} on {threads} threads ({wall:.2} s wall, worker inference {:.0} ms, for {seconds:.1} s audio); WER {:.1}%; copies {} bytes",
        wall / seconds,
        t.timings.worker.inference_ms,
        wer * 100.0,
        ledger.bytes()
    );
    assert_eq!(ledger.bytes(), 0);
}
