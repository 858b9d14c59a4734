//! `switchyard-convert`: produce per-device model artifacts.

use clap::{Parser, Subcommand};

/// Produce the model artifacts each Switchyard device profile needs.
#[derive(Parser)]
#[command(name = "switchyard-convert", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the artifact formats a device profile reads.
    Plan {
        /// Device profile name.
        #[arg(long, default_value = switchyard_profiles::DEFAULT_PROFILE)]
        profile: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan { profile } => {
            switchyard_profiles::builtin(&profile)?;
            let formats = switchyard_converter::formats_for_profile(&profile);
            #[allow(clippy::print_stdout)]
            {
                println!("profile {profile} reads: {}", formats.join(", "));
            }
        }
    }
    Ok(())
}
