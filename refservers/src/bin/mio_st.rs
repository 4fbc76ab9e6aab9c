//! Reference: a single-threaded mio readiness loop, the design pollmux has,
//! written the way mio's own `tcp_server` example is: edge-triggered, each
//! socket registered once for reading and writing, every read drained to
//! WouldBlock. Unlike that example it shares one read buffer, bounds what a
//! connection may have pending, and one bad connection closes only itself.

use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);
/// The one read buffer the loop shares (pollmux's default too).
const READ_BUFFER: usize = 256 * 1024;
/// Bytes a connection may hold not yet echoed before it is not read.
const MAX_PENDING: usize = 256 * 1024;

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    /// How much of `pending` is already sent.
    sent: usize,
    read_open: bool,
    /// Reading stopped at MAX_PENDING; resume once writes drain (an edge
    /// for data already waiting will not come again).
    read_paused: bool,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.pending.len() - self.sent
    }
}

fn main() {
    refservers::raise_fd_limit();
    if let Err(err) = run() {
        eprintln!("ref-mio: {err}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(refservers::listen_addr())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    refservers::announce(listener.local_addr()?);

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(err) = poll.poll(&mut events, None) {
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&poll, &listener, &mut conns, &mut free);
                continue;
            }
            let slot = event.token().0 - 1;
            let Some(Some(conn)) = conns.get_mut(slot) else {
                continue;
            };
            let mut ok = true;
            if event.is_writable() {
                ok = flush(conn).is_ok();
                if ok && conn.read_paused && conn.unsent() < MAX_PENDING {
                    conn.read_paused = false;
                    ok = read_all(conn, &mut buf).is_ok();
                }
            }
            if ok && event.is_readable() {
                ok = read_all(conn, &mut buf).is_ok();
            }
            if !ok || (!conn.read_open && conn.unsent() == 0) {
                if let Some(mut conn) = conns[slot].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(slot);
            }
        }
    }
}

fn accept_all(
    poll: &Poll,
    listener: &TcpListener,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nodelay(true);
                let slot = free.pop().unwrap_or_else(|| {
                    conns.push(None);
                    conns.len() - 1
                });
                let interest = Interest::READABLE | Interest::WRITABLE;
                if let Err(err) = poll
                    .registry()
                    .register(&mut stream, Token(slot + 1), interest)
                {
                    eprintln!("register: {err}");
                    free.push(slot);
                    continue;
                }
                conns[slot] = Some(Conn {
                    stream,
                    pending: Vec::new(),
                    sent: 0,
                    read_open: true,
                    read_paused: false,
                });
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                eprintln!("accept: {err}");
                return;
            }
        }
    }
}

/// Edge-triggered: read until WouldBlock (or EOF, or the pending cap).
fn read_all(conn: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    while conn.read_open {
        if conn.unsent() >= MAX_PENDING {
            conn.read_paused = true;
            return Ok(());
        }
        match conn.stream.read(buf) {
            Ok(0) => conn.read_open = false,
            Ok(n) => echo(conn, &buf[..n])?,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Send fresh bytes at once when nothing is queued, else queue them.
fn echo(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    if conn.unsent() > 0 {
        conn.pending.extend_from_slice(data);
        return Ok(());
    }
    conn.pending.clear();
    conn.sent = 0;
    let mut done = 0;
    while done < data.len() {
        match conn.stream.write(&data[done..]) {
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    conn.pending.extend_from_slice(&data[done..]);
    Ok(())
}

fn flush(conn: &mut Conn) -> io::Result<()> {
    while conn.unsent() > 0 {
        match conn.stream.write(&conn.pending[conn.sent..]) {
            Ok(n) => conn.sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if conn.unsent() == 0 {
        conn.pending.clear();
        conn.sent = 0;
    }
    Ok(())
}
