//! `pollmux bench`: a multiplexing load generator that verifies every byte.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Server host name or address.
    #[arg(long, env = "POLLMUX_BENCH_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(short, long, env = "POLLMUX_BENCH_PORT", default_value_t = 8888)]
    pub port: u16,
}

pub fn run(_args: &BenchArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    Err("bench is not built yet".into())
}
