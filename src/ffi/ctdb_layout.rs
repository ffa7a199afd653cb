//! The C layouts libctdb hands out (ctdb_protocol.h as CTDB last shipped
//! it, x86-64): built in malloc'd memory for C to free.  The node map, the
//! public address list and the interface list have the same bytes on the
//! wire as in memory, so their encoding is copied; the vnn map holds a
//! pointer to its array and the db statistics pointers to their hot keys.

use ctdb_client::ClientError;
use ctdb_protocol::statistics::DbStatistics;
use ctdb_protocol::types::VnnMap;
use ctdb_protocol::Layout;
use std::ptr;

use super::ctdb::{ctdb_db_statistics, ctdb_vnn_map};

/// Size of the fixed part of `struct ctdb_db_statistics` up to its
/// `hot_keys_wire` member (whose offset this is).
pub const DB_STATISTICS_FIXED: usize = 464;
/// `sizeof(struct ctdb_db_statistics)`.
pub const DB_STATISTICS_SIZE: usize = 472;
/// Offset of `hot_keys` in it; each slot is 24 bytes (count, pad, TDB_DATA).
const HOT_KEYS_OFFSET: usize = 224;

/// A malloc'd block of at least `min` bytes holding `bytes` (zero-filled after).
pub fn c_copy<T>(bytes: &[u8], min: usize) -> Result<*mut T, ClientError> {
    let size = bytes.len().max(min);
    // SAFETY: malloc has no preconditions; checked for NULL below.
    let p = unsafe { libc::calloc(1, size) }.cast::<u8>();
    if p.is_null() {
        return Err(ClientError::Tdb(tdb_engine::TdbError::Oom));
    }
    // SAFETY: p has room for `size` >= bytes.len() bytes and is fresh.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    Ok(p.cast())
}

/// `struct ctdb_vnn_map` with its malloc'd `map` array.
pub fn vnn_map(m: &VnnMap) -> Result<*mut ctdb_vnn_map, ClientError> {
    let pnns: Vec<u8> = m.map.iter().flat_map(|p| p.0.to_le_bytes()).collect();
    let array = c_copy::<u8>(&pnns, 4)?;
    let mut head = Vec::with_capacity(16);
    head.extend_from_slice(&m.generation.0.to_le_bytes());
    head.extend_from_slice(&(m.map.len() as u32).to_le_bytes());
    head.extend_from_slice(&(array as usize as u64).to_le_bytes());
    c_copy(&head, 16).inspect_err(|_| {
        // SAFETY: the array just allocated, not handed out.
        unsafe { libc::free(array.cast()) }
    })
}

/// Frees a vnn map from [`vnn_map`].
///
/// # Safety
/// `m` is NULL or a block [`vnn_map`] returned, not freed yet.
pub unsafe fn free_vnn_map(m: *mut ctdb_vnn_map) {
    if m.is_null() {
        return;
    }
    // SAFETY: the block is 16 bytes with the array pointer at offset 8.
    let array = unsafe {
        m.cast::<u8>()
            .add(8)
            .cast::<*mut libc::c_void>()
            .read_unaligned()
    };
    // SAFETY: both were malloc'd by vnn_map.
    unsafe {
        libc::free(array);
        libc::free(m.cast());
    }
}

/// `struct ctdb_db_statistics` with its hot keys after it, each key's
/// TDB_DATA pointing at its bytes in the same block.
pub fn db_statistics(s: &DbStatistics) -> Result<*mut ctdb_db_statistics, ClientError> {
    let wire = s.to_bytes();
    let keys: usize = s.hot_keys.iter().map(|k| k.key.len()).sum();
    let mut image = wire[..DB_STATISTICS_FIXED.min(wire.len())].to_vec();
    image.resize(DB_STATISTICS_SIZE + keys, 0);
    let block = c_copy::<u8>(&image, DB_STATISTICS_SIZE)?;
    let mut at = DB_STATISTICS_FIXED;
    for (i, k) in s.hot_keys.iter().enumerate() {
        let slot = HOT_KEYS_OFFSET + i * 24;
        let dptr = if k.key.is_empty() {
            0
        } else {
            block as usize + at
        };
        image[slot + 8..slot + 16].copy_from_slice(&(dptr as u64).to_le_bytes());
        image[slot + 16..slot + 24].copy_from_slice(&(k.key.len() as u64).to_le_bytes());
        image[at..at + k.key.len()].copy_from_slice(&k.key);
        at += k.key.len();
    }
    // SAFETY: block holds image.len() bytes (c_copy sized it so).
    unsafe { ptr::copy_nonoverlapping(image.as_ptr(), block, image.len()) };
    Ok(block.cast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::{Generation, Pnn};

    /// Reads `n` bytes at `offset` of a block.
    ///
    /// # Safety
    /// `p` points to at least `offset + n` readable bytes.
    unsafe fn at(p: *const u8, offset: usize, n: usize) -> Vec<u8> {
        // SAFETY: per the contract.
        unsafe { std::slice::from_raw_parts(p.add(offset), n) }.to_vec()
    }

    #[test]
    fn db_statistics_keys_point_into_the_block() {
        let mut s = DbStatistics {
            db_ro_delegations: 7,
            num_hot_keys: 10,
            ..Default::default()
        };
        s.hot_keys[0].count = 3;
        s.hot_keys[0].key = b"first".to_vec();
        s.hot_keys[2].key = b"xy".to_vec();
        let block = db_statistics(&s).unwrap().cast::<u8>();
        // SAFETY: the block is DB_STATISTICS_SIZE + 7 bytes, laid out as the
        // original struct; the key pointers point inside it.
        unsafe {
            assert_eq!(at(block, 144, 4), 7u32.to_le_bytes());
            assert_eq!(at(block, 216, 4), 10u32.to_le_bytes());
            assert_eq!(at(block, HOT_KEYS_OFFSET, 4), 3u32.to_le_bytes());
            let key0 = u64::from_le_bytes(at(block, HOT_KEYS_OFFSET + 8, 8).try_into().unwrap());
            let len0 = u64::from_le_bytes(at(block, HOT_KEYS_OFFSET + 16, 8).try_into().unwrap());
            assert_eq!(key0 as usize, block as usize + DB_STATISTICS_FIXED);
            assert_eq!(at(key0 as usize as *const u8, 0, len0 as usize), b"first");
            let key1 =
                u64::from_le_bytes(at(block, HOT_KEYS_OFFSET + 24 + 8, 8).try_into().unwrap());
            assert_eq!(key1, 0, "an empty slot has a NULL key");
            let key2 =
                u64::from_le_bytes(at(block, HOT_KEYS_OFFSET + 48 + 8, 8).try_into().unwrap());
            assert_eq!(at(key2 as usize as *const u8, 0, 2), b"xy");
            libc::free(block.cast());
        }
    }

    #[test]
    fn vnn_map_has_its_array() {
        let m = VnnMap {
            generation: Generation(0x1234),
            map: vec![Pnn(0), Pnn(2), Pnn(1)],
        };
        let p = vnn_map(&m).unwrap();
        // SAFETY: a 16-byte block (generation, size, pointer to 3 u32s).
        unsafe {
            let b = p.cast::<u8>();
            assert_eq!(at(b, 0, 4), 0x1234u32.to_le_bytes());
            assert_eq!(at(b, 4, 4), 3u32.to_le_bytes());
            let array = u64::from_le_bytes(at(b, 8, 8).try_into().unwrap()) as usize as *const u8;
            assert_eq!(at(array, 0, 12), [0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
            free_vnn_map(p);
        }
    }
}
