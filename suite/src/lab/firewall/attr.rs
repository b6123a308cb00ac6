//! Reading netlink attributes (`struct nlattr`: u16 length, u16 type, payload padded to 4 bytes).

/// Mask removing the NLA_F_NESTED and NLA_F_NET_BYTEORDER flags from an attribute type.
const TYPE_MASK: u16 = 0x3fff;

/// One attribute: its type (flags removed) and payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr<'a> {
    /// Attribute type without the nested/byte-order flags.
    pub kind: u16,
    /// Payload bytes (without padding).
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The payload as a string, without the trailing NUL the kernel adds.
    pub fn string(&self) -> String {
        let bytes = self.data.split(|b| *b == 0).next().unwrap_or_default();
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// The payload as a big-endian u32 (nf_tables numbers are in network order).
    pub fn be_u32(&self) -> Option<u32> {
        let bytes: [u8; 4] = self.data.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// The attributes nested inside this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.data)
    }
}

/// Iterator over a run of attributes; stops at the first malformed header.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Attributes packed in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The first attribute of type `kind`.
    pub fn get(mut self, kind: u16) -> Option<Attr<'a>> {
        Iterator::find(&mut self, |attr| attr.kind == kind)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let header = self.rest.get(..4)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let data = &self.rest[4..len];
        let padded = (len + 3) & !3;
        self.rest = self.rest.get(padded..).unwrap_or_default();
        Some(Attr { kind, data })
    }
}

/// Appends one attribute to a message being built.
pub(crate) fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    // Attribute payloads we build are table/set names, far below u16::MAX.
    let len16 = u16::try_from(len).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len16.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize((buf.len() + 3) & !3, 0);
}

/// Appends a NUL-terminated string attribute.
pub(crate) fn push_str_attr(buf: &mut Vec<u8>, kind: u16, value: &str) {
    let mut data = value.as_bytes().to_vec();
    data.push(0);
    push_attr(buf, kind, &data);
}
