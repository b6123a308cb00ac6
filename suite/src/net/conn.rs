//! The suite's one netlink transport: a socket of any netlink protocol and the request/answer
//! exchange on it, generic over the message type (`RouteNetlinkMessage` for the rtnetlink
//! client, nf_tables messages for the firewall snapshot in `lab::firewall::nfnl`).
//!
//! A request is one message with its own sequence number. Its answer is read datagram by datagram
//! (each datagram may hold several messages, and a dump spans several datagrams) until the message
//! that ends it: `NLMSG_DONE` for a dump, the `NLMSG_ERROR` acknowledgement for anything else.
//! Messages carrying another sequence number (left over from an earlier, abandoned exchange) are
//! skipped.

use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NlasIterator, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};

use super::{NetError, NetResult};

/// Length of a netlink message header.
const HEADER_LEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: the extended-ack attribute holding the kernel's error text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// How long one read may block before the exchange is declared dead.
const RECV_TIMEOUT: Duration = Duration::from_secs(30);
/// Initial receive buffer; grown when the kernel sends a larger datagram.
const INITIAL_BUFFER: usize = 32 * 1024;
/// How often an interrupted dump (`NLM_F_DUMP_INTR`) is restarted before giving up.
const DUMP_ATTEMPTS: usize = 5;

/// What kind of exchange a request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// `NLM_F_DUMP`: many answers, ended by `NLMSG_DONE`.
    Dump,
    /// A request with `NLM_F_ACK` and the given extra flags (`NLM_F_CREATE`, `NLM_F_EXCL`, ...):
    /// zero or more answers, ended by the acknowledgement.
    Ack(u16),
}

/// An open socket of one netlink protocol, carrying messages of type `M`, and its sequence
/// counter.
pub(crate) struct Conn<M> {
    socket: Socket,
    seq: u32,
    buffer: Vec<u8>,
    message: PhantomData<fn(M) -> M>,
}

impl<M> Conn<M>
where
    M: NetlinkSerializable + NetlinkDeserializable + Clone,
{
    /// Opens and binds a socket of `protocol` (`netlink_sys::protocols::NETLINK_*`) in the
    /// calling thread's network namespace.
    pub(crate) fn open(protocol: isize) -> NetResult<Self> {
        let mut socket = Socket::new(protocol).map_err(NetError::Socket)?;
        socket.bind_auto().map_err(NetError::Socket)?;
        // Best effort: extended acks give the kernel's own error text, capped acks keep error
        // answers small. Old kernels without them still work.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        set_recv_timeout(&socket, RECV_TIMEOUT).map_err(NetError::Socket)?;
        Ok(Self {
            socket,
            seq: 0,
            buffer: Vec::with_capacity(INITIAL_BUFFER),
            message: PhantomData,
        })
    }

    /// Sends `message` and collects every answer message until the exchange ends; a dump the
    /// kernel flags as interrupted is restarted (a few times at most). A negative kernel answer
    /// becomes [`NetError::Kernel`] with `op` as context.
    pub(crate) fn request(&mut self, message: M, exchange: Exchange, op: &str) -> NetResult<Vec<M>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self.exchange(message.clone(), exchange, op)?;
            if !answer.interrupted || attempt >= DUMP_ATTEMPTS {
                return Ok(answer.messages);
            }
        }
    }

    /// One exchange: sends `message` and collects the answer messages until it ends, saying
    /// whether the kernel flagged the dump as interrupted (the caller decides what to redo).
    pub(crate) fn exchange(&mut self, message: M, exchange: Exchange, op: &str) -> NetResult<Answer<M>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.send(message, exchange, seq)?;

        let mut outcome = Answer {
            messages: Vec::new(),
            interrupted: false,
        };
        // The first message that could not be decoded; reported once the exchange has ended so
        // the socket is left clean for the next request.
        let mut decode_error: Option<String> = None;
        loop {
            self.receive_datagram()?;
            let mut offset = 0;
            while offset < self.buffer.len() {
                let rest = &self.buffer[offset..];
                let (header, length) = frame_header(rest)?;
                let frame = &rest[..length];
                offset += align4(length).min(rest.len());
                if header.sequence_number != seq {
                    continue;
                }
                if header.flags & NLM_F_DUMP_INTR != 0 {
                    outcome.interrupted = true;
                }
                let parsed = match NetlinkMessage::<M>::deserialize(frame) {
                    Ok(m) => m,
                    Err(e) => {
                        decode_error.get_or_insert_with(|| format!("{op}: {e}"));
                        continue;
                    }
                };
                match parsed.payload {
                    NetlinkPayload::InnerMessage(inner) => outcome.messages.push(inner),
                    NetlinkPayload::Done(done) => {
                        if done.code < 0 {
                            return Err(kernel_error(op, done.code, None));
                        }
                        return finish(outcome, decode_error);
                    }
                    NetlinkPayload::Error(err) => match err.code {
                        None => return finish(outcome, decode_error),
                        Some(code) => {
                            let text = extended_ack_text(header.flags, &err.header);
                            return Err(kernel_error(op, code.get(), text));
                        }
                    },
                    NetlinkPayload::Overrun(_) => {
                        return Err(NetError::Socket(io::Error::other(format!(
                            "{op}: kernel reported a netlink overrun"
                        ))))
                    }
                    _ => {}
                }
            }
        }
    }

    fn send(&mut self, message: M, exchange: Exchange, seq: u32) -> NetResult<()> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST
            | match exchange {
                Exchange::Dump => NLM_F_DUMP,
                Exchange::Ack(extra) => NLM_F_ACK | extra,
            };
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.socket.send_to(&bytes, &kernel, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NetError::Socket(e)),
            }
        }
    }

    /// Reads one whole datagram into `self.buffer`, growing it when the datagram is larger.
    fn receive_datagram(&mut self) -> NetResult<()> {
        loop {
            self.buffer.clear();
            let peeked = self.socket.recv(&mut self.buffer, libc::MSG_PEEK | libc::MSG_TRUNC);
            let size = match peeked {
                Ok(size) => size,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NetError::Socket(e)),
            };
            self.buffer.clear();
            if self.buffer.capacity() < size {
                self.buffer.reserve(size);
            }
            match self.socket.recv(&mut self.buffer, 0) {
                Ok(read) if read <= self.buffer.len() => return Ok(()),
                Ok(read) => {
                    return Err(NetError::Socket(io::Error::other(format!(
                        "netlink datagram of {read} bytes was truncated to {}",
                        self.buffer.len()
                    ))))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NetError::Socket(e)),
            }
        }
    }
}

/// The answer messages of one exchange.
pub(crate) struct Answer<M> {
    /// The messages, in the kernel's order.
    pub(crate) messages: Vec<M>,
    /// The kernel flagged the dump as inconsistent (the tables changed while it ran).
    pub(crate) interrupted: bool,
}

fn finish<M>(outcome: Answer<M>, decode_error: Option<String>) -> NetResult<Answer<M>> {
    match decode_error {
        Some(e) => Err(NetError::Decode(e)),
        None => Ok(outcome),
    }
}

/// Reads the header of the message at the start of `bytes` and checks its length.
fn frame_header(bytes: &[u8]) -> NetResult<(NetlinkHeader, usize)> {
    let buffer = NetlinkBuffer::new_checked(bytes)
        .map_err(|e| NetError::Decode(format!("malformed netlink message header: {e}")))?;
    let length = buffer.length() as usize;
    if length < HEADER_LEN || length > bytes.len() {
        return Err(NetError::Decode(format!(
            "netlink message claims {length} bytes, {} available",
            bytes.len()
        )));
    }
    let mut header = NetlinkHeader::default();
    header.length = buffer.length();
    header.message_type = buffer.message_type();
    header.flags = buffer.flags();
    header.sequence_number = buffer.sequence_number();
    header.port_number = buffer.port_number();
    Ok((header, length))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn kernel_error(op: &str, code: i32, kernel_text: Option<String>) -> NetError {
    let op = match kernel_text {
        Some(text) => format!("{op} (kernel: {text})"),
        None => op.to_string(),
    };
    NetError::Kernel {
        op,
        source: io::Error::from_raw_os_error(code.saturating_abs()),
    }
}

/// Extracts `NLMSGERR_ATTR_MSG` from an error answer. `echoed` is what follows the error code:
/// the request's header (and, unless the answer is capped, the request's payload), then the
/// extended-ack attributes when `NLM_F_ACK_TLVS` is set.
fn extended_ack_text(flags: u16, echoed: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || echoed.len() < HEADER_LEN {
        return None;
    }
    let request_len = if flags & NLM_F_CAPPED != 0 {
        HEADER_LEN
    } else {
        let len = u32::from_ne_bytes(echoed[..4].try_into().ok()?) as usize;
        align4(len)
    };
    let tlvs = echoed.get(request_len..)?;
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end]).into_owned()
        })
        .filter(|text| !text.is_empty())
}

fn set_recv_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval for the duration of the call and the length matches it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_ack_text_is_found_after_a_capped_header() {
        let mut echoed = vec![0u8; HEADER_LEN];
        echoed[..4].copy_from_slice(&64u32.to_ne_bytes());
        let text = b"Unknown device\0";
        let nla_len = 4 + text.len();
        echoed.extend_from_slice(&(nla_len as u16).to_ne_bytes());
        echoed.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        echoed.extend_from_slice(text);
        echoed.resize(align4(echoed.len()), 0);
        let flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
        assert_eq!(extended_ack_text(flags, &echoed).as_deref(), Some("Unknown device"));
        assert_eq!(extended_ack_text(NLM_F_CAPPED, &echoed), None);
        assert_eq!(extended_ack_text(flags, &echoed[..8]), None);
    }

    #[test]
    fn kernel_errors_keep_the_errno() {
        let e = kernel_error("create veth a/b", -libc::EEXIST, Some("exists".into()));
        match e {
            NetError::Kernel { op, source } => {
                assert_eq!(source.raw_os_error(), Some(libc::EEXIST));
                assert_eq!(op, "create veth a/b (kernel: exists)");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn frame_header_rejects_lengths_past_the_datagram() {
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes[..4].copy_from_slice(&200u32.to_ne_bytes());
        assert!(matches!(frame_header(&bytes), Err(NetError::Decode(_))));
        bytes[..4].copy_from_slice(&(HEADER_LEN as u32).to_ne_bytes());
        assert_eq!(frame_header(&bytes).unwrap().1, HEADER_LEN);
    }
}
