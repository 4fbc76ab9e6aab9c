//! Reference: std only, one thread per connection, blocking `std::io::copy`
//! from the socket to itself.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    refservers::raise_fd_limit();
    let listener = match TcpListener::bind(refservers::listen_addr()) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("cannot listen: {err}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => refservers::announce(addr),
        Err(err) => {
            eprintln!("cannot read the bound address: {err}");
            std::process::exit(1);
        }
    }
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(err) = std::thread::Builder::new().spawn(move || echo(stream)) {
                    eprintln!("cannot start a thread: {err}");
                }
            }
            Err(err) => {
                // Out of descriptors: back off instead of spinning.
                eprintln!("accept: {err}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Copies until EOF; dropping the stream then sends FIN.
    let _ = std::io::copy(&mut &stream, &mut &stream);
}
