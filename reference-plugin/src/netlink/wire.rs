//! Netlink wire format: a message builder and attribute readers, shared by the rtnetlink client
//! and the nf_tables (masquerade) encoder.
//!
//! Everything is written into one growable byte buffer; nested attributes are patched in place
//! when closed, so a request costs one allocation at most, however many attributes it has.

/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `NLA_F_NESTED`: set on the type of every nested attribute.
pub(crate) const NLA_F_NESTED: u16 = 1 << 15;
/// Bits of an attribute type that carry the type itself.
const NLA_TYPE_MASK: u16 = !(1 << 15 | 1 << 14);

/// Rounds `len` up to the 4-byte netlink alignment.
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Builds one or more netlink messages back to back in a single buffer.
#[derive(Default)]
pub(crate) struct MsgBuf {
    buf: Vec<u8>,
    msg_start: usize,
}

/// A nested attribute opened with [`MsgBuf::nest`]; close it with [`MsgBuf::end_nest`].
#[must_use = "a nested attribute must be closed with end_nest"]
pub(crate) struct Nest(usize);

impl MsgBuf {
    /// An empty buffer with room for a typical request.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(512),
            msg_start: 0,
        }
    }

    /// Starts a message: writes an `nlmsghdr` whose length is fixed by [`MsgBuf::finish`].
    pub(crate) fn begin(&mut self, msg_type: u16, flags: u16, seq: u32) {
        self.msg_start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&msg_type.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
    }

    /// Appends a fixed family header (`ifinfomsg`, `rtmsg`, `nfgenmsg` ...), padded to 4 bytes.
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    fn pad(&mut self) {
        let padded = align4(self.buf.len());
        self.buf.resize(padded, 0);
    }

    /// Appends an attribute with a raw value.
    pub(crate) fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// Appends an attribute holding a native-endian `u32` (rtnetlink convention).
    pub(crate) fn attr_u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_ne_bytes());
    }

    /// Appends an attribute holding a big-endian `u32` (nf_tables convention).
    pub(crate) fn attr_be32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// Appends an attribute holding one byte.
    pub(crate) fn attr_u8(&mut self, kind: u16, value: u8) {
        self.attr(kind, &[value]);
    }

    /// Appends a NUL-terminated string attribute.
    pub(crate) fn attr_str(&mut self, kind: u16, value: &str) {
        let len = 4 + value.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// Opens a nested attribute (`NLA_F_NESTED` is set on its type).
    pub(crate) fn nest(&mut self, kind: u16) -> Nest {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Nest(at)
    }

    /// Closes a nested attribute by writing its final length.
    pub(crate) fn end_nest(&mut self, nest: Nest) {
        let len = (self.buf.len() - nest.0) as u16;
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Completes the current message by writing its length.
    pub(crate) fn finish(&mut self) {
        let len = (self.buf.len() - self.msg_start) as u32;
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Every byte written so far (all messages).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// One received netlink message.
#[derive(Clone, Copy)]
pub(crate) struct NlMsg<'a> {
    /// `nlmsg_type`.
    pub(crate) kind: u16,
    /// `nlmsg_flags`.
    pub(crate) flags: u16,
    /// `nlmsg_seq`.
    pub(crate) seq: u32,
    /// Everything after the header.
    pub(crate) payload: &'a [u8],
}

/// Iterates over the messages of one datagram; stops at the first malformed header.
pub(crate) struct Messages<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Messages<'a> {
    type Item = NlMsg<'a>;

    fn next(&mut self) -> Option<NlMsg<'a>> {
        let buf = self.0;
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            self.0 = &[];
            return None;
        }
        let msg = NlMsg {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: &buf[NLMSG_HDRLEN..len],
        };
        self.0 = &buf[align4(len).min(buf.len())..];
        Some(msg)
    }
}

/// Iterates over the attributes in a byte range as `(type, value)`; the nested and
/// byte-order flags are removed from the type.
#[derive(Clone, Copy)]
pub(crate) struct Attrs<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let buf = self.0;
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < 4 || len > buf.len() {
            self.0 = &[];
            return None;
        }
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        let value = &buf[4..len];
        self.0 = &buf[align4(len).min(buf.len())..];
        Some((kind, value))
    }
}

/// Reads a native-endian `u32` attribute value (`None` when too short).
pub(crate) fn ne_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

/// Reads a native-endian `i32` attribute value.
pub(crate) fn ne_i32(value: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

/// Reads a string attribute value, dropping the trailing NUL.
pub(crate) fn string(value: &[u8]) -> String {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

/// True when a string attribute value equals `want` (ignoring the trailing NUL), without
/// allocating.
pub(crate) fn str_eq(value: &[u8], want: &str) -> bool {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    &value[..end] == want.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_reader_round_trip() {
        let mut m = MsgBuf::new();
        m.begin(16, 5, 7);
        m.put(&[1, 2, 3]);
        m.attr_str(3, "eth0");
        let n = m.nest(18);
        m.attr_u32(1, 42);
        m.end_nest(n);
        m.finish();
        let msgs: Vec<_> = Messages(m.bytes()).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].kind, msgs[0].flags, msgs[0].seq), (16, 5, 7));
        let attrs: Vec<_> = Attrs(&msgs[0].payload[4..]).collect();
        assert_eq!(attrs.len(), 2);
        assert!(str_eq(attrs[0].1, "eth0"));
        assert_eq!(attrs[1].0, 18);
        let inner: Vec<_> = Attrs(attrs[1].1).collect();
        assert_eq!(inner, vec![(1u16, &42u32.to_ne_bytes()[..])]);
    }
}
