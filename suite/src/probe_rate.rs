//! A bounded throughput probe: one TCP connection from a sender namespace to a receiver
//! namespace, the sender writing as fast as it can, the receiver counting what arrives in a fixed
//! window. Used to see traffic shaping (the `bandwidth` capability) as a measured rate.
//!
//! Both sockets are made on short-lived threads inside their namespaces ([`crate::ns::run_in`]);
//! the transfer itself runs on one helper thread (the sender) and the caller's thread (the
//! receiver). The whole probe takes the window plus at most a connect timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ns::{self, NsError};
use crate::probe::ProbeError;

/// What a window of transfer carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    /// Bytes received inside the window.
    pub bytes: u64,
    /// The window's actual length.
    pub elapsed: Duration,
}

impl Throughput {
    /// The measured rate in bits per second.
    pub fn bits_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        self.bytes as f64 * 8.0 / secs
    }
}

fn io(op: &str) -> impl FnOnce(std::io::Error) -> ProbeError + '_ {
    move |source| ProbeError::Io {
        op: op.to_string(),
        source,
    }
}

/// Sends as much as possible over TCP from `sender` to `to` (an address of the `receiver`
/// namespace) and counts the bytes the receiver gets during `window`.
pub fn tcp_throughput(
    sender: BorrowedFd<'_>,
    receiver: BorrowedFd<'_>,
    to: IpAddr,
    window: Duration,
) -> Result<Throughput, ProbeError> {
    let listener = ns::run_in(Some(receiver), None, move || {
        TcpListener::bind(SocketAddr::new(to, 0)).map_err(|source| NsError::Sys {
            op: format!("bind throughput receiver on {to}"),
            source,
        })
    })?;
    let addr = listener.local_addr().map_err(io("receiver address"))?;
    let out = ns::run_in(Some(sender), None, move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|source| NsError::Sys {
            op: format!("connect throughput sender to {addr}"),
            source,
        })
    })?;
    listener.set_nonblocking(true).map_err(io("nonblocking receiver"))?;
    let accept_by = Instant::now() + Duration::from_secs(2);
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < accept_by => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io("accept throughput connection")(e)),
        }
    };
    conn.set_nonblocking(false).map_err(io("blocking receiver"))?;
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(io("receiver timeout"))?;
    out.set_write_timeout(Some(Duration::from_millis(50)))
        .map_err(io("sender timeout"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let stop_sender = Arc::clone(&stop);
    let sending = std::thread::spawn(move || {
        let mut out = out;
        let chunk = vec![0x5au8; 64 * 1024];
        while !stop_sender.load(Ordering::Relaxed) {
            match out.write(&chunk) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
    });
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while start.elapsed() < window {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = sending.join();
                return Err(io("receive")(e));
            }
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = conn.shutdown(std::net::Shutdown::Both);
    drop(conn);
    let _ = sending.join();
    Ok(Throughput { bytes, elapsed })
}
