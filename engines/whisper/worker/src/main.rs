//! `switchyard-whisper-worker`: the process that runs whisper.cpp (whisper-rs) for Switchyard.
//!
//! whisper.cpp and llama.cpp both vendor ggml and cannot share a binary, so speech-to-text runs
//! here, supervised by `switchyard_engine_whisper::WhisperHost`. The worker loads the ggml model
//! once, listens on the Unix socket given by `--socket`, accepts one connection (its host) and
//! serves requests one at a time (protocol: `switchyard_engine_whisper::protocol`). The audio
//! arrives as a memfd which is mapped read-only and handed to whisper.cpp as a `&[f32]` view: no
//! copy. The worker exits cleanly (code 0) when the host closes the socket.
//!
//! whisper-rs builds whisper.cpp with GGML_NATIVE: build this binary on the machine (CPU family)
//! that runs it.

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use switchyard_core::{DType, Tensor};
use switchyard_engine_whisper::protocol::{
    read_frame, write_frame, Outcome, Request, Response, Segment, WorkerTimings,
};
use switchyard_engine_whisper::ShmView;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

/// Runs whisper.cpp for a Switchyard gateway (started by the gateway, not by hand).
#[derive(Parser, Debug)]
#[command(name = "switchyard-whisper-worker", version, about)]
struct Args {
    /// whisper.cpp ggml model file.
    #[arg(long)]
    model: PathBuf,
    /// Unix socket path to listen on (removed once the host has connected).
    #[arg(long)]
    socket: PathBuf,
    /// Default threads per request.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Give up if no host connects within this many milliseconds.
    #[arg(long, default_value_t = 30_000)]
    accept_timeout_ms: u64,
}

#[derive(Debug, thiserror::Error)]
enum WorkerError {
    #[error("cannot load whisper model {}: {source}", path.display())]
    Load {
        path: PathBuf,
        source: whisper_rs::WhisperError,
    },
    #[error("cannot create whisper state: {0}")]
    State(whisper_rs::WhisperError),
    #[error("socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no host connected to {} within {after:?}", path.display())]
    NoHost { path: PathBuf, after: Duration },
    #[error("connection to the host failed: {0}")]
    Connection(std::io::Error),
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One plain line: the host shows the tail of this stream in its startup errors.
            eprintln!("switchyard-whisper-worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), WorkerError> {
    let span = tracing::info_span!("whisper_worker", pid = std::process::id());
    let _enter = span.enter();
    whisper_rs::install_logging_hooks();
    let loaded = Instant::now();
    let ctx = WhisperContext::new_with_params(&args.model, WhisperContextParameters::default())
        .map_err(|source| WorkerError::Load {
            path: args.model.clone(),
            source,
        })?;
    let mut state = ctx.create_state().map_err(WorkerError::State)?;
    let eot = ctx.token_eot();
    tracing::info!(ms = loaded.elapsed().as_millis() as u64, model = %args.model.display(), "model loaded");

    let stream = accept_host(&args.socket, Duration::from_millis(args.accept_timeout_ms))?;
    loop {
        let Some((payload, fds)) = read_frame(&stream).map_err(WorkerError::Connection)? else {
            tracing::info!("host closed the socket; exiting");
            return Ok(());
        };
        let response = handle(&mut state, &payload, fds, args.threads, eot);
        let bytes = serde_json::to_vec(&response).unwrap_or_else(|e| {
            format!(
                r#"{{"id":{},"status":"error","message":"cannot encode response: {e}"}}"#,
                response.id
            )
            .into_bytes()
        });
        write_frame(&stream, &bytes, None).map_err(WorkerError::Connection)?;
    }
}

/// Listens on `path` and accepts the host's connection, then removes the socket file.
fn accept_host(path: &Path, timeout: Duration) -> Result<UnixStream, WorkerError> {
    let sock_err = |source| WorkerError::Socket {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(sock_err)?;
    listener.set_nonblocking(true).map_err(sock_err)?;
    let started = Instant::now();
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if started.elapsed() > timeout {
                    let _ = std::fs::remove_file(path);
                    return Err(WorkerError::NoHost {
                        path: path.to_path_buf(),
                        after: timeout,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(sock_err(e)),
        }
    };
    let _ = std::fs::remove_file(path);
    stream.set_nonblocking(false).map_err(sock_err)?;
    Ok(stream)
}

fn handle(
    state: &mut WhisperState,
    payload: &[u8],
    fds: Vec<OwnedFd>,
    threads: u32,
    eot: i32,
) -> Response {
    let request: Request = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            return Response {
                id: 0,
                outcome: Outcome::Error {
                    message: format!("malformed request: {e}"),
                },
            }
        }
    };
    let id = request.id;
    let span = tracing::info_span!("whisper_request", id);
    let _enter = span.enter();
    let outcome = transcribe(state, request, fds, threads, eot).unwrap_or_else(|message| {
        tracing::warn!(%message, "request failed");
        Outcome::Error { message }
    });
    Response { id, outcome }
}

fn transcribe(
    state: &mut WhisperState,
    request: Request,
    fds: Vec<OwnedFd>,
    default_threads: u32,
    eot: i32,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut fds = fds.into_iter();
    let fd = match (fds.next(), fds.next()) {
        (Some(fd), None) => fd,
        (None, _) => return Err("request carried no shared-memory fd".into()),
        (Some(_), Some(_)) => return Err("request carried more than one fd".into()),
    };
    let meta = &request.tensor;
    if meta.dtype != DType::F32 || meta.shape.len() != 1 {
        return Err(format!(
            "audio must be 1-D f32, got {:?} {:?}",
            meta.dtype, meta.shape
        ));
    }
    let size = buffer_size(&fd);
    let view =
        ShmView::map(fd).map_err(|e| format!("cannot map shared memory ({size} bytes): {e}"))?;
    let tensor = Tensor::from_meta(Arc::new(view), meta)
        .map_err(|e| format!("audio layout does not fit the shared buffer: {e}"))?;
    // Borrowed straight from the mapping: whisper.cpp reads the host's pages.
    let samples: &[f32] = tensor
        .as_slice::<f32>()
        .map_err(|e| format!("audio is not a contiguous f32 view: {e}"))?;
    if samples.is_empty() {
        return Err("no samples (empty audio)".into());
    }
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "sample {i} is {} (samples must be finite)",
            samples[i]
        ));
    }
    let opts = &request.options;
    for (what, s) in [
        ("language", opts.language.as_deref()),
        ("initial prompt", opts.initial_prompt.as_deref()),
    ] {
        if s.is_some_and(|s| s.contains('\0')) {
            return Err(format!("{what} contains a NUL byte"));
        }
    }
    if !(0.0..=1.0).contains(&opts.temperature) {
        return Err(format!("temperature {} outside 0..=1", opts.temperature));
    }
    let threads = opts.threads.unwrap_or(default_threads).clamp(1, 256);
    let map_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads as i32);
    params.set_language(opts.language.as_deref());
    if let Some(prompt) = opts.initial_prompt.as_deref() {
        params.set_initial_prompt(prompt);
    }
    params.set_temperature(opts.temperature);
    params.set_no_context(true);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    let inference = Instant::now();
    state
        .full(params, samples)
        .map_err(|e| format!("whisper.cpp failed: {e}"))?;
    let inference_ms = inference.elapsed().as_secs_f64() * 1e3;

    let mut segments = Vec::new();
    for segment in state.as_iter() {
        let text = segment
            .to_str_lossy()
            .map_err(|e| format!("segment text: {e}"))?
            .into_owned();
        // Text tokens only: ids from the end-of-text token up are special or timestamps.
        let mut tokens = Vec::new();
        let mut logprob_sum = 0f32;
        for i in 0..segment.n_tokens() {
            if let Some(token) = segment.get_token(i) {
                let id = token.token_id();
                if id < eot {
                    tokens.push(id);
                    logprob_sum += token.token_data().plog;
                }
            }
        }
        let avg_logprob = if tokens.is_empty() {
            0.0
        } else {
            logprob_sum / tokens.len() as f32
        };
        segments.push(Segment {
            start_s: segment.start_timestamp() as f32 / 100.0,
            end_s: segment.end_timestamp() as f32 / 100.0,
            text,
            tokens,
            avg_logprob,
            no_speech_prob: segment.no_speech_probability(),
        });
    }
    let text = segments
        .iter()
        .map(|s| s.text.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    tracing::info!(
        samples = samples.len(),
        inference_ms,
        threads,
        segments = segments.len(),
        "transcribed"
    );
    Ok(Outcome::Ok {
        text,
        segments,
        timings: WorkerTimings {
            map_ms,
            inference_ms,
            threads,
        },
    })
}

/// Size of the shared buffer, for error messages.
fn buffer_size(fd: &OwnedFd) -> u64 {
    fd.try_clone()
        .ok()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len())
}
