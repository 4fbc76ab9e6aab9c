//! What the reference echo servers share: the command line (`--host`,
//! `--port`), the open-files limit, and the `listening on ADDR` line that
//! `ci/bench.sh` waits for (the same contract as `pollmux serve`).
//!
//! These servers exist only to be measured against; each is the idiomatic
//! design of its kind, kept small, with no tuning pollmux does not also get.

use std::io::Write;
use std::net::SocketAddr;

/// `--host H --port P` (defaults 127.0.0.1 and 0); exits 2 on anything else.
pub fn listen_addr() -> SocketAddr {
    let mut host = String::from("127.0.0.1");
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => port = p,
                Err(_) => usage(&format!("'{v}' is not a port")),
            },
            _ => usage(&format!("unexpected argument '{arg}'")),
        }
    }
    match format!("{host}:{port}").parse() {
        Ok(addr) => addr,
        Err(_) => match std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)) {
            Ok(mut addrs) => addrs.next().unwrap_or_else(|| usage("host has no address")),
            Err(e) => usage(&format!("cannot resolve '{host}': {e}")),
        },
    }
}

fn usage(what: &str) -> ! {
    eprintln!("{what}; usage: [--host HOST] [--port PORT]");
    std::process::exit(2)
}

/// Raise the soft open-files limit to the hard one, as `pollmux serve` does.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("cannot raise the open-files limit: {err}");
    }
}

/// Print `listening on ADDR` on stdout and flush it at once.
pub fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// The tokio echo server both tokio references run, on either runtime.
pub mod tokio_echo {
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpStream};

    pub async fn serve() {
        let listener = match TcpListener::bind(super::listen_addr()).await {
            Ok(l) => l,
            Err(err) => {
                eprintln!("cannot listen: {err}");
                std::process::exit(1);
            }
        };
        match listener.local_addr() {
            Ok(addr) => super::announce(addr),
            Err(err) => {
                eprintln!("cannot read the bound address: {err}");
                std::process::exit(1);
            }
        }
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(echo(stream));
                }
                Err(err) => {
                    // Out of descriptors: back off instead of spinning.
                    eprintln!("accept: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn echo(mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.split();
        // Copies until EOF (8 KiB buffer); dropping the stream then sends FIN,
        // so a half-closing client gets all its bytes and then EOF.
        let _ = tokio::io::copy(&mut reader, &mut writer).await;
    }
}
