//! Command-line arguments.

use std::path::PathBuf;

use clap::Parser;

/// recnode: records live streams (RTMP/WHIP in, fMP4+DASH and FLV out).
#[derive(Debug, Clone, Parser)]
#[command(name = "recnode", version, about)]
pub struct Cli {
    /// TOML config file; without it the built-in defaults are used. `RECNODE_<SECTION>__<KEY>`
    /// environment variables override either.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}
