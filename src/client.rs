//! `pollmux client`: the seed's test client, done right. It reads until the
//! whole message has come back (the seed trusted one `recv`), checks it, and
//! reports a refused connection, an unknown host or a timeout in one line.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::cli::ClientArgs;

pub fn run(args: &ClientArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut stream = connect(&args.host, args.port, args.timeout)?;
    stream.set_read_timeout(Some(args.timeout))?;
    stream.set_write_timeout(Some(args.timeout))?;
    stream.set_nodelay(true)?;
    let message = args.message.as_bytes();
    let mut echo = vec![0u8; message.len()];
    let stdout = io::stdout();
    let mut sent = 0u64;
    loop {
        stream
            .write_all(message)
            .map_err(|e| format!("sending to {}:{} failed: {e}", args.host, args.port))?;
        read_echo(&mut stream, &mut echo, args.timeout)?;
        if echo != message {
            return Err(format!(
                "echo differs: sent \"{}\", got \"{}\"",
                message.escape_ascii(),
                echo.escape_ascii()
            )
            .into());
        }
        {
            let mut out = stdout.lock();
            writeln!(out, "{}", args.message)?;
            out.flush()?;
        }
        sent += 1;
        if args.count.is_some_and(|count| sent >= count) {
            return Ok(());
        }
        std::thread::sleep(args.interval);
    }
}

fn read_echo(stream: &mut TcpStream, echo: &mut [u8], timeout: Duration) -> Result<(), String> {
    let mut got = 0;
    while got < echo.len() {
        match stream.read(&mut echo[got..]) {
            Ok(0) => {
                return Err(format!(
                    "server closed the connection after {got} of {} echoed bytes",
                    echo.len()
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "no complete echo within {:.1} s ({got} of {} bytes)",
                    timeout.as_secs_f64(),
                    echo.len()
                ))
            }
            Err(e) => return Err(format!("reading the echo failed: {e}")),
        }
    }
    Ok(())
}

/// Try every address the host resolves to, each with the timeout.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => Err(format!(
            "connecting to {addr} timed out after {:.1} s",
            timeout.as_secs_f64()
        )),
        Some((addr, e)) => Err(format!("cannot connect to {addr}: {e}")),
        None => Err(format!("host '{host}' resolves to no address")),
    }
}
