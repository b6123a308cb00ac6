//! The suite's one hash: 64-bit FNV-1a, small and stable across builds and machines (unlike
//! `std`'s `DefaultHasher`), enough to tell contents apart in a report (rule bodies, legacy
//! tables, files) and to derive short names (the recorder's host interface names). Not for
//! anything an adversary picks.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a hasher.
#[derive(Debug, Clone)]
pub(crate) struct Fnv1a(u64);

/// The FNV-1a digest of `bytes`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a::new();
    hasher.write(bytes);
    hasher.finish()
}

impl Fnv1a {
    /// A hasher in its initial state.
    pub fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    /// Mixes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// The digest.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The digest as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{fnv1a, Fnv1a};

    #[test]
    fn known_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(Fnv1a::new().hex(), "cbf29ce484222325");
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.hex(), "af63dc4c8601ec8c");
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.hex(), "85944171f73967e8");
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
