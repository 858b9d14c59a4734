//! `switchyard-convert plan` and `build`: what a device profile needs from the models
//! directory, and making it.

use std::path::PathBuf;

use clap::Args;

use crate::plan::{plan, Plan};

/// Where the models are and for which profile.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Device profile: a built-in name (`switchyard profile list`) or a TOML file.
    #[arg(long, default_value = switchyard_profiles::DEFAULT_PROFILE)]
    pub profile: String,
    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Models directory (default: SWITCHYARD_MODELS_DIR, else ~/.cache/switchyard/models).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `build`: as `plan`, plus the converter's threads.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The profile and models.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Threads for the quantizer.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
}

/// The models directory the gateway uses by default.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

fn make_plan(args: &PlanArgs) -> anyhow::Result<(Plan, PathBuf)> {
    let profile = switchyard_profiles::resolve(&args.profile)?;
    let dir = args.models_dir.clone().unwrap_or_else(default_models_dir);
    Ok((plan(&profile.device, &dir, args.model.as_deref())?, dir))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The plan as text, one block per model.
pub fn render(plan: &Plan) -> String {
    let mut out = format!("profile {}\n", plan.profile);
    for model in &plan.models {
        out.push_str(&format!(
            "\n{} ({:?}): weights {}, KV cache {}\n",
            model.model,
            model
                .task
                .map(|t| format!("{t:?}").to_lowercase())
                .unwrap_or_default(),
            mib(model.weights_bytes),
            mib(model.kv_bytes)
        ));
        for a in &model.artifacts {
            let state = if a.exists { "present" } else { "missing" };
            let how = match &a.conversion {
                None => "source".to_owned(),
                Some(c) => serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                    .unwrap_or_default(),
            };
            out.push_str(&format!(
                "  {:<28} {:<6} {:<9} {:>11}  {state:<7} {how:<10} for {}\n",
                a.role,
                a.format,
                a.precision,
                mib(a.bytes),
                a.engines.join(", ")
            ));
        }
        for note in &model.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    out.push_str(&format!(
        "\ntotal {} of a {} budget: {}\n",
        mib(plan.total_bytes),
        mib(plan.budget_bytes),
        if plan.fits { "fits" } else { "DOES NOT FIT" }
    ));
    out
}

/// `switchyard-convert plan`.
#[allow(clippy::print_stdout)]
pub fn run_plan(args: &PlanArgs) -> anyhow::Result<()> {
    let (plan, _) = make_plan(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    Ok(())
}

/// `switchyard-convert build`.
#[allow(clippy::print_stdout)]
pub fn run_build(args: &BuildArgs) -> anyhow::Result<()> {
    let (plan, dir) = make_plan(&args.plan)?;
    let todo = plan.missing().count();
    let bar = if args.plan.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(todo as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{pos}/{len} {wide_msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let built = crate::build::build(&plan, &dir, args.threads, &mut |model, artifact| {
        bar.set_message(format!("{} {}", model.model, artifact.role));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    // Plan again: everything must be present now.
    let (after, _) = make_plan(&args.plan)?;
    let still = after.missing().count();
    if args.plan.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"built": built, "plan": after}))?
        );
    } else {
        for b in &built {
            println!(
                "built {} {}: {} from {} in {:.1} s ({:.1} MB/s); {}",
                b.model,
                b.role,
                mib(b.bytes),
                mib(b.source_bytes),
                b.seconds,
                b.source_bytes as f64 / 1e6 / b.seconds.max(1e-9),
                b.verified
            );
        }
        if built.is_empty() {
            println!(
                "nothing to build: profile {} has every artifact it needs",
                plan.profile
            );
        }
        print!("{}", render(&after));
    }
    anyhow::ensure!(
        still == 0,
        "{still} artifact(s) still missing after the build"
    );
    Ok(())
}
