//! The hash functions a tdb file can be keyed by: Samba's original hash, Bob Jenkins'
//! lookup3 `hashlittle` (TDB_INCOMPATIBLE_HASH) and a caller-supplied one.

use std::sync::Arc;

/// A caller-supplied hash function.
pub type CustomHash = Arc<dyn Fn(&[u8]) -> u32 + Send + Sync>;

/// Which function maps a key to its 32-bit hash.
#[derive(Clone)]
pub enum HashFunction {
    /// The original tdb hash (the default for files without TDB_INCOMPATIBLE_HASH).
    Old,
    /// Jenkins lookup3 hashlittle with seed 0, as `tdb_jenkins_hash`.
    Jenkins,
    /// A caller-supplied function.
    Custom(CustomHash),
}

impl HashFunction {
    /// Hashes `key` with this function.
    pub fn hash(&self, key: &[u8]) -> u32 {
        match self {
            HashFunction::Old => old_hash(key),
            HashFunction::Jenkins => jenkins_hash(key),
            HashFunction::Custom(f) => f(key),
        }
    }
}

/// Samba's original tdb hash function.
pub fn old_hash(key: &[u8]) -> u32 {
    let mut value = 0x238F_13AFu32.wrapping_mul(key.len() as u32);
    for (i, &b) in key.iter().enumerate() {
        let shift = (i as u32).wrapping_mul(5) % 24;
        value = value.wrapping_add((b as u32) << shift);
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// Bob Jenkins' lookup3 `hashlittle(key, len, 0)`, the value of `tdb_jenkins_hash`.
///
/// The key is read as little-endian 32-bit words whatever its alignment, which is
/// what every code path of the reference implementation computes.
pub fn jenkins_hash(key: &[u8]) -> u32 {
    let init = 0xdead_beefu32.wrapping_add(key.len() as u32);
    let (mut a, mut b, mut c) = (init, init, init);
    // All but the last 1..=12 bytes go through mix() in 12-byte blocks.
    let full_blocks = if key.is_empty() {
        0
    } else {
        (key.len() - 1) / 12
    };
    let (body, rest) = key.split_at(full_blocks * 12);
    for block in body.chunks_exact(12) {
        let block: &[u8; 12] = block.try_into().expect("12 bytes");
        a = a.wrapping_add(le_word(block, 0));
        b = b.wrapping_add(le_word(block, 4));
        c = c.wrapping_add(le_word(block, 8));
        mix(&mut a, &mut b, &mut c);
    }
    if rest.is_empty() {
        return c;
    }
    let mut tail = [0u8; 12];
    tail[..rest.len()].copy_from_slice(rest);
    a = a.wrapping_add(le_word(&tail, 0));
    b = b.wrapping_add(le_word(&tail, 4));
    c = c.wrapping_add(le_word(&tail, 8));
    final_mix(&mut a, &mut b, &mut c);
    c
}

#[inline(always)]
fn le_word(bytes: &[u8; 12], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[inline(always)]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline(always)]
fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jenkins_matches_lookup3_reference_values() {
        // Published lookup3 driver values: hashlittle("", 0, 0) and
        // hashlittle("Four score and seven years ago", 30, 0).
        assert_eq!(jenkins_hash(b""), 0xdeadbeef);
        assert_eq!(jenkins_hash(b"Four score and seven years ago"), 0x17770551);
    }

    #[test]
    fn old_hash_of_empty_key_is_the_constant_tail() {
        assert_eq!(old_hash(b""), 12345);
        assert_ne!(old_hash(b"a"), old_hash(b"b"));
    }
}
