//! pollmux: a single-threaded readiness-loop echo server on one
//! `polling::Poller`, its test client and a verifying load generator.
//!
//! The library face is what `main.rs` and the integration tests use; the
//! architecture and its invariants are described in `DESIGN.md`.

pub mod bench;
pub mod cli;
pub mod client;
pub mod logging;
mod registration;
pub mod server;
mod sys;

/// `pollmux --version`: the crate version and, when built from git, the commit.
pub const VERSION: &str = if env!("POLLMUX_GIT_COMMIT").is_empty() {
    env!("CARGO_PKG_VERSION")
} else {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("POLLMUX_GIT_COMMIT"),
        ")"
    )
};
