//! Reference: tokio's multi-thread runtime (one worker per core), a task per
//! connection, `tokio::io::copy` from the read half to the write half.

fn main() {
    refservers::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
