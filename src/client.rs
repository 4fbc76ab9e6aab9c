//! `pollmux client`: the seed's test client, done right. It reads until the
//! whole message has come back (the seed trusted one `recv`), checks it, and
//! reports a refused connection, an unknown host or a timeout in one line.
//!
//! With `--udp` each message is one datagram. UDP may lose, duplicate or
//! reorder, so a missing or wrong echo is reported on its own line and the
//! client goes on; it exits 1 at the end if any echo was lost or wrong.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{ClientArgs, MAX_DATAGRAM};

/// Ctrl-C (or SIGTERM) for the client: a message on `asked` ends the run
/// after the echo in progress, as `--count` would, like `ping`. Until
/// `connected` is set there is nothing to finish, and the signal handler
/// leaves at once.
pub struct Stop {
    pub asked: Receiver<()>,
    pub connected: Arc<AtomicBool>,
}

impl Stop {
    /// Pause for `interval`; true if a stop was asked for meanwhile.
    fn asked_within(&self, interval: Duration) -> bool {
        match self.asked.recv_timeout(interval) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => false,
        }
    }
}

pub fn run(args: &ClientArgs, stop: &Stop) -> Result<(), Box<dyn std::error::Error>> {
    if args.udp {
        return run_udp(args, stop);
    }
    let mut stream = connect(&args.host, args.port, args.timeout)?;
    stop.connected.store(true, Ordering::SeqCst);
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
        if args.count.is_some_and(|count| sent >= count) || stop.asked_within(args.interval) {
            // A server that echoes too much usually sends the surplus right
            // behind the echo: give it a moment to show up.
            check_nothing_extra(&mut stream, Duration::from_millis(100))?;
            return Ok(());
        }
    }
}

/// Read the whole echo within `timeout` from now: the deadline is for the
/// echo, not for each read, so a server that trickles a byte at a time
/// cannot stretch it.
fn read_echo(stream: &mut TcpStream, echo: &mut [u8], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut got = 0;
    while got < echo.len() {
        let read = time_left(deadline).and_then(|left| {
            stream.set_read_timeout(Some(left))?;
            stream.read(&mut echo[got..])
        });
        match read {
            Ok(0) => {
                return Err(format!(
                    "server closed the connection after {got} of {} echoed bytes",
                    echo.len()
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                return Err(format!(
                    "no complete echo within {timeout:?} ({got} of {} bytes)",
                    echo.len()
                ))
            }
            Err(e) => return Err(format!("reading the echo failed: {e}")),
        }
    }
    Ok(())
}

/// Time left until `deadline`; a timeout error once it has passed (a read
/// timeout cannot be zero).
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left)
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
        // Nothing more came (a signal cut the look short: that too).
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
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
        Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => {
            Err(format!("connecting to {addr} timed out after {timeout:?}"))
        }
        Some((addr, e)) => Err(format!("cannot connect to {addr}: {e}")),
        None => Err(format!("host '{host}' resolves to no address")),
    }
}

/// `--udp`: send the message as one datagram per interval and wait for its
/// echo; count what is lost or wrong instead of stopping at the first.
fn run_udp(args: &ClientArgs, stop: &Stop) -> Result<(), Box<dyn std::error::Error>> {
    let socket = udp_socket(&args.host, args.port)?;
    stop.connected.store(true, Ordering::SeqCst);
    let server = socket.peer_addr()?;
    let message = args.message.as_bytes();
    // One byte more than any datagram: a longer echo shows as longer.
    let mut echo = vec![0u8; MAX_DATAGRAM + 1];
    let stdout = io::stdout();
    let (mut sent, mut lost, mut wrong) = (0u64, 0u64, 0u64);
    loop {
        if sent > 0 {
            report_strays(&socket, &mut echo, Duration::ZERO, server)?;
        }
        socket
            .send(message)
            .map_err(|e| udp_error(server, "sending to", e))?;
        sent += 1;
        match recv_within(&socket, &mut echo, args.timeout) {
            Ok(n) if &echo[..n] == message => {
                let mut out = stdout.lock();
                writeln!(out, "{}", args.message)?;
                out.flush()?;
            }
            Ok(n) => {
                wrong += 1;
                eprintln!(
                    "pollmux: datagram {sent}: echo differs: sent \"{}\", got \"{}\"",
                    message.escape_ascii(),
                    echo[..n].escape_ascii()
                );
            }
            Err(e) if is_timeout(&e) => {
                lost += 1;
                eprintln!(
                    "pollmux: datagram {sent}: no echo within {:?} (lost)",
                    args.timeout
                );
            }
            Err(e) => return Err(udp_error(server, "waiting for an echo from", e).into()),
        }
        if args.count.is_some_and(|count| sent >= count) || stop.asked_within(args.interval) {
            // A duplicate usually follows its original at once.
            report_strays(&socket, &mut echo, Duration::from_millis(100), server)?;
            break;
        }
    }
    if lost + wrong > 0 {
        return Err(format!("{lost} of {sent} datagrams lost, {wrong} echoed wrong").into());
    }
    Ok(())
}

/// Receive one datagram within `timeout` from now. A signal (Ctrl-C asks
/// to stop after this echo) interrupts the wait but does not end it.
fn recv_within(socket: &UdpSocket, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        socket.set_read_timeout(Some(time_left(deadline)?))?;
        match socket.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Report datagrams that arrive when no echo is awaited (a late echo or a
/// duplicate: UDP allows both, so they are shown, not failed), waiting up
/// to `grace` for the first.
fn report_strays(
    socket: &UdpSocket,
    buf: &mut [u8],
    grace: Duration,
    server: SocketAddr,
) -> Result<(), String> {
    let previous = socket.read_timeout().map_err(|e| e.to_string())?;
    // A read timeout cannot be zero: a millisecond means "what is here now".
    let mut wait = grace.max(Duration::from_millis(1));
    let result = loop {
        if let Err(e) = socket.set_read_timeout(Some(wait)) {
            break Err(e.to_string());
        }
        match socket.recv(buf) {
            Ok(n) => eprintln!(
                "pollmux: an extra echo arrived (late or duplicated): \"{}\"",
                buf[..n].escape_ascii()
            ),
            Err(e) if is_timeout(&e) => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(udp_error(server, "waiting for an echo from", e)),
        }
        wait = Duration::from_millis(1);
    };
    socket
        .set_read_timeout(previous)
        .map_err(|e| e.to_string())?;
    result
}

/// A UDP socket connected to the first address `host` resolves to.
fn udp_socket(host: &str, port: u16) -> Result<UdpSocket, String> {
    let addr = (crate::cli::unbracket(host), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .next()
        .ok_or_else(|| format!("host '{host}' resolves to no address"))?;
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(addr)
        .map_err(|e| udp_error(addr, "connecting to", e))?;
    Ok(socket)
}

/// "Refused" (a reset on Windows) is the ICMP answer of a port nobody
/// listens on: say so in words.
fn udp_error(server: SocketAddr, doing: &str, e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
            format!("{doing} {server} failed: no UDP server on that port ({e})")
        }
        _ => format!("{doing} {server} failed: {e}"),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
