//! Reference: tokio's current-thread runtime (everything on one thread, like
//! pollmux), a task per connection, `tokio::io::copy` between the halves.

fn main() {
    refservers::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(refservers::tokio_echo::serve()),
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            std::process::exit(1);
        }
    }
}
