//! The suite's own packet probes: ICMP echo, UDP and TCP exchanges between namespaces, and an
//! outside server that reports the source address it saw (the primitive behind MASQUERADE checks).
//!
//! Sockets are created on a short-lived thread inside the namespace ([`crate::ns::run_in`]) and then
//! used from the caller's thread: a socket keeps the namespace it was born in. No `ping` or other
//! process is involved.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ns::{self, NsError};

/// Errors from probes.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Namespace entry failed.
    #[error(transparent)]
    Ns(#[from] NsError),
    /// A socket call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// No answer arrived in time.
    #[error("no reply from {0} within {1:?}")]
    NoReply(IpAddr, Duration),
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> ProbeError {
    let op = op.into();
    move |source| ProbeError::Io { op, source }
}

fn in_ns<T: Send>(
    netns: BorrowedFd<'_>,
    f: impl FnOnce() -> io::Result<T> + Send,
    what: &str,
) -> Result<T, ProbeError> {
    let what = what.to_string();
    Ok(ns::run_in(Some(netns), None, move || {
        f().map_err(|source| NsError::Sys { op: what, source })
    })?)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends ICMP echo requests from inside `netns` to `dst` until one reply arrives or `timeout`
/// passes; returns the round-trip time. `payload` bytes of data are sent (for MTU probes) and, for
/// IPv4, `dont_fragment` sets DF so an oversized packet is refused instead of fragmented.
pub fn icmp_echo(
    netns: BorrowedFd<'_>,
    dst: IpAddr,
    payload: usize,
    dont_fragment: bool,
    timeout: Duration,
) -> Result<Duration, ProbeError> {
    let v6 = dst.is_ipv6();
    let fd: OwnedFd = in_ns(
        netns,
        move || {
            let (domain, proto) = if v6 {
                (libc::AF_INET6, libc::IPPROTO_ICMPV6)
            } else {
                (libc::AF_INET, libc::IPPROTO_ICMP)
            };
            // SAFETY: plain socket creation; ownership moves into OwnedFd at once.
            let raw = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: raw is a fresh descriptor we own.
            Ok(unsafe { OwnedFd::from_raw_fd(raw) })
        },
        "raw ICMP socket",
    )?;
    if dont_fragment && !v6 {
        let val: libc::c_int = libc::IP_PMTUDISC_DO;
        // SAFETY: setsockopt with a correctly sized int.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&val as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    let ident: u16 = (std::process::id() as u16) ^ (fd.as_raw_fd() as u16).rotate_left(8);
    let mut packet = vec![0u8; 8 + payload];
    packet[0] = if v6 { 128 } else { 8 };
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    for (i, b) in packet[8..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let sock = socket2_addr(dst);
    let start = Instant::now();
    let mut seq: u16 = 0;
    while start.elapsed() < timeout {
        seq = seq.wrapping_add(1);
        packet[6..8].copy_from_slice(&seq.to_be_bytes());
        packet[2..4].copy_from_slice(&[0, 0]);
        if !v6 {
            let c = checksum(&packet);
            packet[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let sent_at = Instant::now();
        // SAFETY: sendto with a valid buffer and sockaddr of the right length.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                sock.0.as_ptr().cast(),
                sock.1,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EMSGSIZE) {
                return Err(ProbeError::Io {
                    op: format!("send {} byte echo to {dst} with DF", packet.len()),
                    source: e,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let round_end = (sent_at + Duration::from_millis(300)).min(start + timeout);
        while Instant::now() < round_end {
            if let Some(rtt) = read_reply(&fd, v6, ident, seq, round_end, sent_at)? {
                return Ok(rtt);
            }
        }
    }
    Err(ProbeError::NoReply(dst, timeout))
}

fn read_reply(
    fd: &OwnedFd,
    v6: bool,
    ident: u16,
    seq: u16,
    until: Instant,
    sent_at: Instant,
) -> Result<Option<Duration>, ProbeError> {
    let wait = until.saturating_duration_since(Instant::now()).as_millis().max(1) as i32;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, wait) } <= 0 {
        return Ok(None);
    }
    let mut buf = [0u8; 65536];
    // SAFETY: recv into a buffer we own.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n <= 0 {
        return Ok(None);
    }
    let data = &buf[..n as usize];
    // IPv4 raw sockets deliver the IP header; IPv6 raw sockets do not.
    let icmp = if v6 {
        data
    } else {
        let ihl = usize::from(data[0] & 0x0f) * 4;
        if data.len() < ihl + 8 {
            return Ok(None);
        }
        &data[ihl..]
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() >= 8
        && icmp[0] == reply_type
        && u16::from_be_bytes([icmp[4], icmp[5]]) == ident
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
    {
        return Ok(Some(sent_at.elapsed()));
    }
    Ok(None)
}

/// A sockaddr for `ip` (port 0) as bytes plus its length.
fn socket2_addr(ip: IpAddr) -> (Vec<u8>, libc::socklen_t) {
    match ip {
        IpAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            let size = std::mem::size_of::<libc::sockaddr_in>();
            // SAFETY: viewing a plain C struct as bytes.
            let bytes = unsafe { std::slice::from_raw_parts((&sa as *const libc::sockaddr_in).cast::<u8>(), size) };
            (bytes.to_vec(), size as libc::socklen_t)
        }
        IpAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: a.octets() },
                sin6_scope_id: 0,
            };
            let size = std::mem::size_of::<libc::sockaddr_in6>();
            // SAFETY: viewing a plain C struct as bytes.
            let bytes = unsafe { std::slice::from_raw_parts((&sa as *const libc::sockaddr_in6).cast::<u8>(), size) };
            (bytes.to_vec(), size as libc::socklen_t)
        }
    }
}

/// A UDP or TCP server inside a namespace that answers every datagram or connection with the
/// source address it saw ("src=IP:PORT") and records those sources.
pub struct SourceServer {
    /// Address the server listens on.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SourceServer {
    /// Starts a UDP server bound to `addr` inside `netns`.
    pub fn udp(netns: BorrowedFd<'_>, addr: SocketAddr) -> Result<Self, ProbeError> {
        let sock = in_ns(netns, move || UdpSocket::bind(addr), "bind UDP server")?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(io_err("set timeout"))?;
        let addr = sock.local_addr().map_err(io_err("local addr"))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st2.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    if let Ok(mut v) = s2.lock() {
                        v.push(from);
                    }
                    let _ = sock.send_to(format!("src={from}").as_bytes(), from);
                }
            }
        });
        Ok(SourceServer {
            addr,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Starts a TCP server bound to `addr` inside `netns`.
    pub fn tcp(netns: BorrowedFd<'_>, addr: SocketAddr) -> Result<Self, ProbeError> {
        let listener = in_ns(netns, move || TcpListener::bind(addr), "bind TCP server")?;
        listener.set_nonblocking(true).map_err(io_err("nonblocking listener"))?;
        let addr = listener.local_addr().map_err(io_err("local addr"))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, from)) => {
                        if let Ok(mut v) = s2.lock() {
                            v.push(from);
                        }
                        let _ = io::Write::write_all(&mut conn, format!("src={from}").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(SourceServer {
            addr,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Sources seen so far.
    pub fn seen(&self) -> Vec<SocketAddr> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends UDP datagrams from inside `netns` to `dst` until an answer arrives; returns the answer
/// text (from a [`SourceServer`] it reads "src=IP:PORT").
pub fn udp_exchange(netns: BorrowedFd<'_>, dst: SocketAddr, timeout: Duration) -> Result<String, ProbeError> {
    let any: SocketAddr = if dst.is_ipv6() {
        "[::]:0".parse()
    } else {
        "0.0.0.0:0".parse()
    }
    .map_err(|_| ProbeError::NoReply(dst.ip(), timeout))?;
    let sock = in_ns(netns, move || UdpSocket::bind(any), "bind UDP client")?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io_err("set timeout"))?;
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while start.elapsed() < timeout {
        let _ = sock.send_to(b"cni-conformance probe", dst);
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == dst {
                return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
    Err(ProbeError::NoReply(dst.ip(), timeout))
}

/// Opens a TCP connection from inside `netns` to `dst` and returns what the server sent.
pub fn tcp_exchange(netns: BorrowedFd<'_>, dst: SocketAddr, timeout: Duration) -> Result<String, ProbeError> {
    let stream = in_ns(netns, move || TcpStream::connect_timeout(&dst, timeout), "TCP connect")?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err("set timeout"))?;
    let mut text = String::new();
    io::Read::read_to_string(&mut &stream, &mut text).map_err(io_err(format!("read from {dst}")))?;
    Ok(text)
}
