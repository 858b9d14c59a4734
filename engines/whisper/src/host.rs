//! The supervisor: spawns `switchyard-whisper-worker`, connects to its Unix socket, sends it one
//! request at a time and restarts it (with backoff) when it dies.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::{CopyLedger, DType, Device, Tensor, TensorMeta};

use crate::protocol::{self, Outcome, Request, Response, Segment, TranscribeOptions};
use crate::shm::{shm_backing, ShmAlloc, ShmStorage};

/// Environment variable naming the worker executable.
pub const WORKER_ENV: &str = "SWITCHYARD_WHISPER_WORKER";
/// File name of the worker executable.
pub const WORKER_EXE_NAME: &str = "switchyard-whisper-worker";

/// How long things may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From spawning the worker to its socket accepting (includes loading the model).
    pub startup: Duration,
    /// One request, from sending it to the answer.
    pub request: Duration,
    /// Wait before the first restart after the worker died; doubles per consecutive failure.
    pub restart_backoff: Duration,
    /// Upper bound of the restart backoff.
    pub max_restart_backoff: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            startup: Duration::from_secs(30),
            request: Duration::from_secs(300),
            restart_backoff: Duration::from_millis(100),
            max_restart_backoff: Duration::from_secs(10),
        }
    }
}

/// How to run the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperConfig {
    /// Worker executable; `None` searches (see [`locate_worker`]).
    pub worker_exe: Option<PathBuf>,
    /// whisper.cpp ggml model file.
    pub model_path: PathBuf,
    /// Threads per request unless the request says otherwise.
    pub threads: u32,
    /// Limits.
    pub timeouts: Timeouts,
}

impl WhisperConfig {
    /// Defaults for `model_path`: 2 threads, default timeouts, worker found by search.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            worker_exe: None,
            model_path: model_path.into(),
            threads: 2,
            timeouts: Timeouts::default(),
        }
    }
}

/// Where the time of one transcription went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptTimings {
    /// What the worker reported.
    pub worker: protocol::WorkerTimings,
    /// From sending the request to receiving the answer, in milliseconds.
    pub round_trip_ms: f64,
    /// Waiting for the worker (queue behind other requests, restarts), in milliseconds.
    pub wait_ms: f64,
}

/// A transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The whole text.
    pub text: String,
    /// Timed segments.
    pub segments: Vec<Segment>,
    /// Duration of the audio in seconds (16 kHz).
    pub audio_s: f32,
    /// Whether the samples reached the worker without a copy.
    pub zero_copy: bool,
    /// Timings.
    pub timings: TranscriptTimings,
}

/// Why speech-to-text failed.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    /// No worker executable was found.
    #[error("whisper worker executable not found; tried {}. Build it with `cargo build --release -p switchyard-whisper-worker` or set {WORKER_ENV}", display_paths(tried))]
    WorkerNotFound {
        /// Paths that were checked.
        tried: Vec<PathBuf>,
    },
    /// The worker could not be spawned.
    #[error("cannot start whisper worker {}: {error}", exe.display())]
    Spawn {
        /// Executable.
        exe: PathBuf,
        /// OS error.
        error: io::Error,
    },
    /// The worker started but never became ready.
    #[error("whisper worker {} failed to start: {reason}{}", exe.display(), stderr_suffix(stderr))]
    Startup {
        /// Executable.
        exe: PathBuf,
        /// What happened.
        reason: String,
        /// Last lines the worker wrote to stderr.
        stderr: String,
    },
    /// The worker process died while serving a request; it is restarted for the next one.
    #[error("whisper worker (pid {pid}) died during request {request}: {status}; it will be restarted{}", stderr_suffix(stderr))]
    WorkerDied {
        /// Its pid.
        pid: u32,
        /// The request that failed.
        request: u64,
        /// Exit status, as text.
        status: String,
        /// Last lines the worker wrote to stderr.
        stderr: String,
    },
    /// The worker did not answer in time; it was killed and will be restarted.
    #[error("whisper worker (pid {pid}) did not answer request {request} within {after:?}; it was killed and will be restarted")]
    Timeout {
        /// Its pid.
        pid: u32,
        /// The request.
        request: u64,
        /// The limit.
        after: Duration,
    },
    /// The worker answered something that does not follow the protocol.
    #[error("whisper worker protocol error: {0}")]
    Protocol(String),
    /// The worker rejected or failed this request (it keeps running).
    #[error("whisper worker could not transcribe request {request}: {message}")]
    Worker {
        /// The request.
        request: u64,
        /// The worker's message.
        message: String,
    },
    /// The audio tensor is unusable.
    #[error("invalid audio for speech-to-text: {0}")]
    InvalidAudio(String),
    /// Shared memory could not be allocated.
    #[error("cannot allocate shared memory for audio: {0}")]
    Shm(io::Error),
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; worker stderr: {}", stderr.trim())
    }
}

/// Finds the worker executable: `explicit` if given, else `$SWITCHYARD_WHISPER_WORKER`, else
/// `switchyard-whisper-worker` next to the current executable or in its parent directory (so
/// test binaries in `target/<profile>/deps` find `target/<profile>/switchyard-whisper-worker`).
pub fn locate_worker(explicit: Option<&Path>) -> Result<PathBuf, SttError> {
    let mut candidates = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    } else if let Some(p) = std::env::var_os(WORKER_ENV).filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(p));
    } else if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(WORKER_EXE_NAME));
            if let Some(up) = dir.parent() {
                candidates.push(up.join(WORKER_EXE_NAME));
            }
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(SttError::WorkerNotFound { tried: candidates })
}

/// Keeps the last lines a worker wrote to stderr (and forwards them to tracing).
type StderrTail = Arc<Mutex<VecDeque<String>>>;

fn tail_text(tail: &StderrTail) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

struct Worker {
    child: Child,
    stream: UnixStream,
    pid: u32,
    stderr: StderrTail,
}

impl Worker {
    /// Reaps the process (killing it first if needed) and describes how it ended.
    fn finish(mut self, kill: bool) -> String {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if kill {
            let _ = self.child.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        status.map_or_else(|| "exit status unknown".into(), describe_status)
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

struct State {
    worker: Option<Worker>,
    next_id: u64,
    consecutive_failures: u32,
    restart_not_before: Option<Instant>,
}

/// Runs speech-to-text in a supervised `switchyard-whisper-worker` process.
pub struct WhisperHost {
    config: WhisperConfig,
    exe: PathBuf,
    state: Mutex<State>,
    pid: AtomicU32,
    starts: AtomicU64,
}

impl std::fmt::Debug for WhisperHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperHost")
            .field("exe", &self.exe)
            .field("model", &self.config.model_path)
            .field("pid", &self.worker_pid())
            .finish()
    }
}

static SOCKET_COUNTER: AtomicU64 = AtomicU64::new(0);

impl WhisperHost {
    /// Locates the worker, starts it and waits until it has loaded the model.
    pub fn start(config: WhisperConfig) -> Result<Self, SttError> {
        let exe = locate_worker(config.worker_exe.as_deref())?;
        let host = Self {
            config,
            exe,
            state: Mutex::new(State {
                worker: None,
                next_id: 1,
                consecutive_failures: 0,
                restart_not_before: None,
            }),
            pid: AtomicU32::new(0),
            starts: AtomicU64::new(0),
        };
        {
            let mut state = host.lock();
            let worker = host.spawn()?;
            state.worker = Some(worker);
        }
        Ok(host)
    }

    /// The worker's pid while one is running (for operators and tests).
    pub fn worker_pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|p| *p != 0)
    }

    /// How many times a worker process was started (1 + restarts).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }

    /// The worker executable in use.
    pub fn worker_exe(&self) -> &Path {
        &self.exe
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent in a way that
        // matters: the worker slot is re-validated on every request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self) -> Result<Worker, SttError> {
        let span = tracing::info_span!("whisper_worker_start", exe = %self.exe.display());
        let _enter = span.enter();
        let socket = std::env::temp_dir().join(format!(
            "switchyard-whisper-{}-{}.sock",
            std::process::id(),
            SOCKET_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let t = &self.config.timeouts;
        let mut child = Command::new(&self.exe)
            .arg("--model")
            .arg(&self.config.model_path)
            .arg("--socket")
            .arg(&socket)
            .arg("--threads")
            .arg(self.config.threads.to_string())
            .arg("--accept-timeout-ms")
            .arg(t.startup.as_millis().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| SttError::Spawn {
                exe: self.exe.clone(),
                error,
            })?;
        let pid = child.id();
        let stderr: StderrTail = Arc::default();
        if let Some(pipe) = child.stderr.take() {
            let tail = stderr.clone();
            let _ = std::thread::Builder::new()
                .name(format!("whisper-worker-{pid}-stderr"))
                .spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        tracing::debug!(target: "switchyard_whisper_worker", pid, "{line}");
                        if let Ok(mut t) = tail.lock() {
                            if t.len() == 20 {
                                t.pop_front();
                            }
                            t.push_back(line);
                        }
                    }
                });
        }
        let started = Instant::now();
        let fail = |child: &mut Child, reason: String| {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&socket);
            // Give the stderr thread a moment to collect the last words.
            std::thread::sleep(Duration::from_millis(50));
            SttError::Startup {
                exe: self.exe.clone(),
                reason,
                stderr: tail_text(&stderr),
            }
        };
        let stream = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let reason = format!("{} before it was ready", describe_status(status));
                    return Err(fail(&mut child, reason));
                }
                Ok(None) => {}
                Err(e) => return Err(fail(&mut child, format!("cannot poll the process: {e}"))),
            }
            if let Ok(stream) = UnixStream::connect(&socket) {
                break stream;
            }
            if started.elapsed() > t.startup {
                let reason = format!("not ready after {:?}", t.startup);
                return Err(fail(&mut child, reason));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&socket);
        if let Err(e) = stream.set_read_timeout(Some(t.request)) {
            return Err(fail(&mut child, format!("socket setup: {e}")));
        }
        self.pid.store(pid, Ordering::SeqCst);
        self.starts.fetch_add(1, Ordering::SeqCst);
        tracing::info!(
            pid,
            ms = started.elapsed().as_millis() as u64,
            "whisper worker ready"
        );
        Ok(Worker {
            child,
            stream,
            pid,
            stderr,
        })
    }

    /// Transcribes 16 kHz mono `f32` audio (any contiguous or strided 1-D view).
    ///
    /// If `audio` lives in shared memory from [`ShmAlloc`] and is contiguous (a `narrow`ed view
    /// is fine), its memfd and layout are sent and nothing is copied. Otherwise the samples are
    /// copied once into shared memory and the copy is recorded in `ledger` as `ipc`.
    /// Blocking; concurrent callers are served one after another.
    pub fn transcribe(
        &self,
        audio: &Tensor,
        opts: &TranscribeOptions,
        ledger: &CopyLedger,
    ) -> Result<Transcript, SttError> {
        let span = tracing::info_span!("whisper_transcribe", samples = audio.numel());
        let _enter = span.enter();
        let (shm, meta, zero_copy) = prepare_audio(audio, ledger)?;
        let mut options = opts.clone();
        options.threads = Some(options.threads.unwrap_or(self.config.threads).max(1));
        let waited = Instant::now();
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let worker = self.ensure_worker(&mut state)?;
        let wait_ms = waited.elapsed().as_secs_f64() * 1e3;
        let request = Request {
            id,
            tensor: meta,
            options,
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|e| SttError::Protocol(format!("cannot encode request: {e}")))?;
        let sent = Instant::now();
        let exchange = protocol::write_frame(&worker.stream, &payload, Some(shm.fd()))
            .and_then(|()| protocol::read_frame(&worker.stream));
        let round_trip_ms = sent.elapsed().as_secs_f64() * 1e3;
        let frame = match exchange {
            Ok(Some((frame, _))) => frame,
            Ok(None) => return Err(self.worker_lost(&mut state, id, None)),
            Err(e) => return Err(self.worker_lost(&mut state, id, Some(e))),
        };
        drop(shm);
        let response: Response = match serde_json::from_slice(&frame) {
            Ok(r) => r,
            Err(e) => {
                self.discard_worker(&mut state);
                return Err(SttError::Protocol(format!("undecodable response: {e}")));
            }
        };
        if response.id != id {
            self.discard_worker(&mut state);
            return Err(SttError::Protocol(format!(
                "answer for request {} while waiting for {id}",
                response.id
            )));
        }
        state.consecutive_failures = 0;
        drop(state);
        match response.outcome {
            Outcome::Ok {
                text,
                segments,
                timings,
            } => {
                tracing::debug!(id, round_trip_ms, zero_copy, "transcribed");
                Ok(Transcript {
                    text,
                    segments,
                    audio_s: audio.numel() as f32 / 16000.0,
                    zero_copy,
                    timings: TranscriptTimings {
                        worker: timings,
                        round_trip_ms,
                        wait_ms,
                    },
                })
            }
            Outcome::Error { message } => Err(SttError::Worker {
                request: id,
                message,
            }),
        }
    }

    /// The running worker, starting one (after the backoff) if the last one died.
    fn ensure_worker<'s>(&self, state: &'s mut State) -> Result<&'s Worker, SttError> {
        // A worker that died while idle is replaced before this request is sent to it.
        let exited = state
            .worker
            .as_mut()
            .is_some_and(|w| !matches!(w.child.try_wait(), Ok(None)));
        if exited {
            if let Some(w) = state.worker.take() {
                self.pid.store(0, Ordering::SeqCst);
                let pid = w.pid;
                let status = w.finish(false);
                tracing::warn!(pid, %status, "whisper worker died while idle; restarting");
            }
            self.note_failure(state);
        }
        if state.worker.is_none() {
            if let Some(at) = state.restart_not_before.take() {
                let now = Instant::now();
                if at > now {
                    tracing::info!(
                        wait_ms = (at - now).as_millis() as u64,
                        "whisper worker restart backoff"
                    );
                    std::thread::sleep(at - now);
                }
            }
            match self.spawn() {
                Ok(w) => state.worker = Some(w),
                Err(e) => {
                    self.note_failure(state);
                    return Err(e);
                }
            }
        }
        state
            .worker
            .as_ref()
            .ok_or_else(|| SttError::Protocol("no worker".into()))
    }

    fn note_failure(&self, state: &mut State) {
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let t = &self.config.timeouts;
        let factor = 1u32 << state.consecutive_failures.saturating_sub(1).min(16);
        let backoff = t
            .restart_backoff
            .saturating_mul(factor)
            .min(t.max_restart_backoff);
        state.restart_not_before = Some(Instant::now() + backoff);
    }

    fn discard_worker(&self, state: &mut State) {
        if let Some(w) = state.worker.take() {
            self.pid.store(0, Ordering::SeqCst);
            w.finish(true);
        }
        self.note_failure(state);
    }

    /// The exchange with the worker failed: reap it, schedule a restart, explain.
    fn worker_lost(&self, state: &mut State, request: u64, error: Option<io::Error>) -> SttError {
        let timed_out = error.as_ref().is_some_and(|e| {
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            )
        });
        let Some(worker) = state.worker.take() else {
            return SttError::Protocol("worker vanished".into());
        };
        self.pid.store(0, Ordering::SeqCst);
        self.note_failure(state);
        let pid = worker.pid;
        let stderr = worker.stderr.clone();
        let status = worker.finish(timed_out);
        // Let the stderr forwarder drain what the worker wrote last.
        std::thread::sleep(Duration::from_millis(20));
        if timed_out {
            tracing::warn!(pid, request, "whisper worker timed out; killed");
            return SttError::Timeout {
                pid,
                request,
                after: self.config.timeouts.request,
            };
        }
        let status = match error {
            Some(e) => format!("{status} (socket: {e})"),
            None => status,
        };
        tracing::warn!(pid, request, %status, "whisper worker died");
        SttError::WorkerDied {
            pid,
            request,
            status,
            stderr: tail_text(&stderr),
        }
    }
}

impl Drop for WhisperHost {
    fn drop(&mut self) {
        let worker = self.lock().worker.take();
        if let Some(w) = worker {
            // Closing the socket makes the worker exit on its own.
            let how = w.finish(false);
            tracing::debug!(%how, "whisper worker stopped");
        }
    }
}

/// Shared memory + layout to send for `audio`, copying (and counting) only if it is not
/// already a contiguous shared-memory tensor.
fn prepare_audio(
    audio: &Tensor,
    ledger: &CopyLedger,
) -> Result<(Arc<ShmStorage>, TensorMeta, bool), SttError> {
    if audio.dtype() != DType::F32 {
        return Err(SttError::InvalidAudio(format!(
            "samples must be f32, got {:?}",
            audio.dtype()
        )));
    }
    if audio.device() != Device::Cpu {
        return Err(SttError::InvalidAudio(
            "samples must be in host memory".into(),
        ));
    }
    let n = audio.numel();
    if n == 0 {
        return Err(SttError::InvalidAudio("no samples (empty audio)".into()));
    }
    if audio.shape().iter().filter(|d| **d > 1).count() > 1 {
        return Err(SttError::InvalidAudio(format!(
            "expected mono samples (one dimension), got shape {:?}",
            audio.shape()
        )));
    }
    let check = |samples: &[f32]| match samples.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(SttError::InvalidAudio(format!(
            "sample {i} is {} (samples must be finite)",
            samples[i]
        ))),
        None => Ok(()),
    };
    if let (Some(shm), Ok(samples)) = (shm_backing(audio), audio.as_slice::<f32>()) {
        check(samples)?;
        let meta = TensorMeta {
            dtype: DType::F32,
            shape: vec![n],
            strides: vec![1],
            byte_offset: audio.byte_offset(),
            device: Device::Cpu,
        };
        return Ok((shm, meta, true));
    }
    // Copy into shared memory (gathering strided views), counted once.
    let mut buffer = ShmAlloc.alloc_shm(n * 4).map_err(SttError::Shm)?;
    {
        use switchyard_core::StorageMut;
        let dst: &mut [f32] = bytemuck_f32(buffer.bytes_mut())?;
        match audio.as_slice::<f32>() {
            Ok(src) => dst.copy_from_slice(src),
            Err(_) => {
                let stride = audio
                    .strides()
                    .iter()
                    .zip(audio.shape())
                    .find(|(_, d)| **d > 1);
                let step = stride.map_or(1, |(s, _)| *s);
                let bytes = &audio.storage().bytes()[audio.byte_offset()..];
                for (i, out) in dst.iter_mut().enumerate() {
                    let at = i * step * 4;
                    let b = bytes.get(at..at + 4).ok_or_else(|| {
                        SttError::InvalidAudio("strided view runs past its storage".into())
                    })?;
                    *out = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
        }
        check(dst)?;
    }
    ledger.record("ipc", n * 4);
    let meta = TensorMeta {
        dtype: DType::F32,
        shape: vec![n],
        strides: vec![1],
        byte_offset: 0,
        device: Device::Cpu,
    };
    Ok((buffer.freeze(), meta, false))
}

/// Views page-aligned shared memory as `f32`s.
fn bytemuck_f32(bytes: &mut [u8]) -> Result<&mut [f32], SttError> {
    bytemuck::try_cast_slice_mut(bytes)
        .map_err(|e| SttError::Shm(io::Error::other(format!("shared buffer as f32: {e}"))))
}
