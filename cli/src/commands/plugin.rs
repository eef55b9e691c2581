//! `lamar plugin`: inspect plugins; the sandbox limits every plugin-running command shares.

use anyhow::Result;
use clap::{Args, Subcommand};
use lamar_plugins::{Limits, PluginHost, PluginKind};
use std::path::PathBuf;

/// Work with WebAssembly plugins (voters and rewards).
///
/// A plugin is a `.wasm` file implementing one interface of plugins/wit/lamar-plugin.wit,
/// usually written in Rust with lamar-plugin-sdk and built for wasm32-unknown-unknown. It runs
/// sandboxed: no imports (no files, network or clock), a fuel budget per call, a memory cap.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Load a plugin, check its interface and sandbox rules, and print what it says about itself.
    Check(CheckArgs),
}

/// Arguments of `lamar plugin check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plugin file.
    pub file: PathBuf,
    #[command(flatten)]
    pub limits: LimitsArgs,
}

/// Sandbox limits for plugins.
#[derive(Args, Debug, Clone)]
pub struct LimitsArgs {
    /// Fuel a plugin may use per call (about one unit per WebAssembly instruction).
    #[arg(long, default_value_t = Limits::default().fuel_per_call)]
    pub plugin_fuel: u64,
    /// Memory a plugin instance may use, in MiB.
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    pub plugin_memory_mib: usize,
}

impl Default for LimitsArgs {
    fn default() -> Self {
        LimitsArgs {
            plugin_fuel: Limits::default().fuel_per_call,
            plugin_memory_mib: Limits::default().memory_bytes >> 20,
        }
    }
}

impl LimitsArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            fuel_per_call: self.plugin_fuel,
            memory_bytes: self.plugin_memory_mib.saturating_mul(1 << 20),
            ..Limits::default()
        }
    }
}

/// Runs `lamar plugin …`.
pub fn run(command: &PluginCommand) -> Result<()> {
    match command {
        PluginCommand::Check(args) => {
            let host = PluginHost::new(args.limits.limits())?;
            let report = host.check(&args.file)?;
            let kind = match report.kind {
                PluginKind::Voter => "voter",
                PluginKind::Reward => "reward",
            };
            println!("{}: OK", args.file.display());
            println!("  kind:        {kind} ({})", report.interface);
            println!("  name:        {}", report.info.name);
            println!("  version:     {}", report.info.version);
            println!("  description: {}", report.info.description);
            println!("  size:        {} bytes", report.file_bytes);
            println!("  imports:     none (sandboxed)");
            Ok(())
        }
    }
}
