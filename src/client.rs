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
        if sent > 0 {
            check_nothing_extra(&mut stream, Duration::ZERO)?;
        }
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
            // A server that echoes too much usually sends the surplus right
            // behind the echo: give it a moment to show up.
            check_nothing_extra(&mut stream, Duration::from_millis(100))?;
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

/// Fail if the server sent bytes nobody asked for (an echo server must not),
/// waiting up to `grace` for them; EOF here is fine only after the last echo.
fn check_nothing_extra(stream: &mut TcpStream, grace: Duration) -> Result<(), String> {
    let mut extra = [0u8; 64];
    let previous = stream.read_timeout().map_err(|e| e.to_string())?;
    // A read timeout cannot be zero: a millisecond means "what is here now".
    stream
        .set_read_timeout(Some(grace.max(Duration::from_millis(1))))
        .map_err(|e| e.to_string())?;
    let result = stream.read(&mut extra);
    stream
        .set_read_timeout(previous)
        .map_err(|e| e.to_string())?;
    match result {
        Ok(0) if grace.is_zero() => Err("server closed the connection".into()),
        Ok(0) => Ok(()),
        Ok(n) => Err(format!(
            "server sent {n} more bytes than were echoed: \"{}\"",
            extra[..n].escape_ascii()
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("connection failed: {e}")),
    }
}

/// Try every address the host resolves to, each with the timeout.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (crate::cli::unbracket(host), port)
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
