//! The recnode binary: parse arguments, set up logging, load the config, then run the
//! node (the default, or `recnode run`) or a client subcommand (`recnode events`).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use recnode::cli::{self, Cli, Command};
use recnode::{config::Config, node};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // RUST_LOG filters logs (e.g. `RUST_LOG=recnode=debug`); the default is `info`.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // One process-wide rustls provider (ring) before anything opens TLS or DTLS: the
    // cluster's dependencies also enable aws-lc-rs, and with two providers compiled in
    // rustls cannot pick one by itself (WHIP's DTLS would panic).
    recnode_actors::uploader::init_http_transport();

    // The actors (ractor spawns them with `tokio::spawn`) run on a multi-threaded runtime,
    // so streams, recorders and WebRTC sessions use every core. actix-web's HTTP workers
    // run on threads of their own, and the main System's block_on is still a LocalSet, so
    // `actix_web::rt::spawn` keeps working.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("recnode-rt")
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("recnode: error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let system = actix_web::rt::System::with_tokio_rt(move || runtime);
    match system.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with the whole cause chain; no backtrace: these are operator
            // errors (bad config, port in use), not bugs.
            eprintln!("recnode: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    match cli.command {
        None | Some(Command::Run) => node::run(config).await?,
        Some(Command::Events(args)) => cli::events(&args, &config).await?,
    }
    Ok(())
}
