//! The suite's hashes, each written once:
//! - [`Fnv1a`]: 64-bit FNV-1a, small and stable across builds and machines (unlike `std`'s
//!   `DefaultHasher`), enough to tell contents apart in a report (rule bodies, legacy tables,
//!   files) and to derive short names (the recorder's host interface names);
//! - [`ContentDigest`]: 128 bits from two SipHash states, the cache keys of the VM images (which
//!   only need to be stable within one build of the suite).
//!
//! Neither is for anything an adversary picks.

use std::hash::{DefaultHasher, Hasher};

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

/// An incremental 128-bit content digest: two `std` SipHash states, the second one salted, so
/// a collision needs both halves to collide.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentDigest {
    first: DefaultHasher,
    second: DefaultHasher,
}

impl ContentDigest {
    /// A digest whose second half starts from `salt`.
    pub fn salted(salt: &[u8]) -> Self {
        let mut digest = Self::default();
        digest.second.write(salt);
        digest
    }

    /// Mixes `bytes` into both halves.
    pub fn write(&mut self, bytes: &[u8]) {
        self.first.write(bytes);
        self.second.write(bytes);
    }

    /// Mixes a length (or any number) into both halves.
    pub fn write_u64(&mut self, value: u64) {
        self.first.write_u64(value);
        self.second.write_u64(value);
    }

    /// The digest as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.first.finish(), self.second.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::{fnv1a, ContentDigest, Fnv1a};

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

    #[test]
    fn content_digest_halves_differ_and_follow_the_content() {
        let digest = |bytes: &[u8]| {
            let mut d = ContentDigest::salted(b"salt");
            d.write(bytes);
            d.hex()
        };
        assert_eq!(digest(b"a").len(), 32);
        assert_eq!(digest(b"a"), digest(b"a"));
        assert_ne!(digest(b"a"), digest(b"b"));
        let hex = digest(b"a");
        assert_ne!(hex[..16], hex[16..]);
    }
}
