//! The hash functions a tdb file can be keyed by: Samba's original hash, Bob Jenkins'
//! lookup3 `hashlittle` (TDB_INCOMPATIBLE_HASH) and a caller-supplied one.

use std::sync::Arc;

/// Which function maps a key to its 32-bit hash.
#[derive(Clone)]
pub enum HashFunction {
    /// The original tdb hash (the default for files without TDB_INCOMPATIBLE_HASH).
    Old,
    /// Jenkins lookup3 hashlittle with seed 0, as `tdb_jenkins_hash`.
    Jenkins,
    /// A caller-supplied function.
    Custom(Arc<dyn Fn(&[u8]) -> u32 + Send + Sync>),
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
    todo!()
}

/// Bob Jenkins' lookup3 `hashlittle(key, len, 0)`, the value of `tdb_jenkins_hash`.
pub fn jenkins_hash(key: &[u8]) -> u32 {
    todo!()
}
