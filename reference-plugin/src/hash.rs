//! The plugins' one hash: 64-bit FNV-1a. Small and stable across builds and machines (unlike
//! `std`'s `DefaultHasher`), which the names it derives need: host-local's lock and owner file
//! names and masquerade owner tags must be the same for every invocation, and `build.rs`
//! includes this file for the build token. Not for anything an adversary picks.

/// The FNV-1a offset basis: the state before any byte.
pub const FNV1A_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues an FNV-1a hash in state `hash` with `bytes` (start from [`FNV1A_START`]).
pub fn fnv1a_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_continue(FNV1A_START, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a_continue(fnv1a(b"foo"), b"bar"), fnv1a(b"foobar"));
    }
}
