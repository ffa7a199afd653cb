//! The on-disk layout of a tdb file: constants, the header and the record header.
//! All byte-level parsing and encoding of those structures lives here.
//!
//! Every 32-bit field is stored in the byte order of the machine that created the
//! file; a file of the other order is opened with TDB_CONVERT and each field is
//! byte-swapped on the way in and out (`ByteOrder`).

/// An offset into the mapped database (the area after any mutex area).
pub type Offset = u32;

/// The text at the start of every tdb file (with its NUL it is 10 bytes).
pub const MAGIC_FOOD: &[u8] = b"TDB file\n\0";
/// The version field of a current-format file.
pub const VERSION: u32 = 0x2601_1967 + 6;
/// Magic of a live record.
pub const MAGIC: u32 = 0x2601_1999;
/// Magic of a record on the freelist.
pub const FREE_MAGIC: u32 = !MAGIC;
/// Magic of a deleted record still linked in its chain.
pub const DEAD_MAGIC: u32 = 0xFEE1_DEAD;
/// Magic of a valid transaction recovery area.
pub const RECOVERY_MAGIC: u32 = 0xf53b_c0e7;
/// Magic of a recovery area that holds nothing to replay.
pub const RECOVERY_INVALID_MAGIC: u32 = 0;
/// `rwlocks` value of a file made with TDB_INCOMPATIBLE_HASH (keeps old tdbs out).
pub const HASH_RWLOCK_MAGIC: u32 = 0x0bad_1a51;
/// `rwlocks` value of a file whose `feature_flags` field is valid.
pub const FEATURE_FLAG_MAGIC: u32 = 0x0bad_1a52;
/// Feature flag: the file has a robust-mutex area in front of it.
pub const FEATURE_FLAG_MUTEX: u32 = 1;
/// Every feature this implementation understands.
pub const SUPPORTED_FEATURE_FLAGS: u32 = FEATURE_FLAG_MUTEX;
/// Hash chains of a database created with hash_size 0.
pub const DEFAULT_HASH_SIZE: u32 = 131;
/// Byte used to fill space added to a file when it cannot be preallocated.
pub const PAD_BYTE: u8 = 0x42;
/// A whole word of padding, which also means "no tailer here".
pub const PAD_U32: u32 = 0x4242_4242;
/// Record sizes are multiples of this.
pub const ALIGNMENT: u32 = 4;

/// Size of the file header.
pub const HEADER_SIZE: u32 = 168;
/// Offset of the freelist head, and the base of the hash table.
pub const FREELIST_TOP: Offset = HEADER_SIZE;
/// Offset of the header's `version` field.
pub const VERSION_OFS: Offset = 32;
/// Offset of the header's `hash_size` field.
pub const HASH_SIZE_OFS: Offset = 36;
/// Offset of the header's `recovery_start` field.
pub const RECOVERY_HEAD_OFS: Offset = 44;
/// Offset of the header's `sequence_number` field.
pub const SEQNUM_OFS: Offset = 48;
/// Size of a record header.
pub const RECORD_SIZE: u32 = 24;
/// Offset of `magic` within a record header.
pub const RECORD_MAGIC_OFS: u32 = 20;
/// Size of an offset or a tailer.
pub const OFF_SIZE: u32 = 4;

/// The byte order of the file relative to this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Same order as this machine.
    Native,
    /// The other order (TDB_CONVERT): every field is byte-swapped.
    Swapped,
}

impl ByteOrder {
    /// Decodes a stored 32-bit field.
    #[inline]
    pub fn get(self, b: &[u8]) -> u32 {
        let v = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        match self {
            ByteOrder::Native => v,
            ByteOrder::Swapped => v.swap_bytes(),
        }
    }

    /// Encodes a 32-bit field for storage.
    #[inline]
    pub fn put(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Native => v.to_ne_bytes(),
            ByteOrder::Swapped => v.swap_bytes().to_ne_bytes(),
        }
    }
}

/// Offset of the head of hash chain `bucket` (bucket -1, i.e. `u32::MAX` wrapped, is never used here).
/// `bucket` is below the hash size of an open database, whose table fits in the
/// file (open checks it), so the offset fits in 32 bits.
#[inline]
pub fn hash_top(bucket: u32) -> Offset {
    FREELIST_TOP + (bucket + 1) * OFF_SIZE
}

/// First byte after the hash table: where records may start (`hash_size` as open checked it).
#[inline]
pub fn data_start(hash_size: u32) -> Offset {
    hash_top(hash_size - 1) + OFF_SIZE
}

/// Rounds `x` up to a multiple of `a` (a power of two); the caller has made sure
/// that `x + a` fits in 32 bits.
#[inline]
pub fn align(x: u32, a: u32) -> u32 {
    (x + a - 1) & !(a - 1)
}

/// A record header as stored in front of every record, free or used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    /// Next record in the same hash chain or freelist (0 ends it).
    pub next: Offset,
    /// Bytes after this header that belong to the record (key, data, slack, tailer).
    pub rec_len: u32,
    /// Length of the key.
    pub key_len: u32,
    /// Length of the value.
    pub data_len: u32,
    /// The full 32-bit hash of the key.
    pub full_hash: u32,
    /// One of MAGIC, FREE_MAGIC, DEAD_MAGIC, RECOVERY_MAGIC.
    pub magic: u32,
}

impl Record {
    /// Parses a record header from its 24 stored bytes.
    #[inline]
    pub fn decode(b: &[u8], order: ByteOrder) -> Record {
        let b: &[u8; 24] = b[..24].try_into().expect("24 bytes");
        let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let rec = Record {
            next: w(0),
            rec_len: w(4),
            key_len: w(8),
            data_len: w(12),
            full_hash: w(16),
            magic: w(20),
        };
        match order {
            ByteOrder::Native => rec,
            ByteOrder::Swapped => Record {
                next: rec.next.swap_bytes(),
                rec_len: rec.rec_len.swap_bytes(),
                key_len: rec.key_len.swap_bytes(),
                data_len: rec.data_len.swap_bytes(),
                full_hash: rec.full_hash.swap_bytes(),
                magic: rec.magic.swap_bytes(),
            },
        }
    }

    /// The 24 bytes that store this header.
    pub fn encode(&self, order: ByteOrder) -> [u8; 24] {
        let mut b = [0u8; 24];
        for (i, v) in [
            self.next,
            self.rec_len,
            self.key_len,
            self.data_len,
            self.full_hash,
            self.magic,
        ]
        .into_iter()
        .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&order.put(v));
        }
        b
    }

    /// Whether this is a deleted record left in its chain.
    pub fn is_dead(&self) -> bool {
        self.magic == DEAD_MAGIC
    }

    /// Key plus value length, checked for overflow.
    pub fn full_len(&self) -> Option<u32> {
        self.key_len.checked_add(self.data_len)
    }
}

/// The file header (the first 168 bytes of the mapped area).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// The magic text, NUL-padded.
    pub magic_food: [u8; 32],
    /// Format version (VERSION, possibly byte-swapped on disk).
    pub version: u32,
    /// Number of hash chains.
    pub hash_size: u32,
    /// 0, HASH_RWLOCK_MAGIC or FEATURE_FLAG_MAGIC.
    pub rwlocks: u32,
    /// Offset of the transaction recovery area, or 0.
    pub recovery_start: Offset,
    /// The sequence number (TDB_SEQNUM).
    pub sequence_number: u32,
    /// Hash of MAGIC_FOOD with the file's hash function.
    pub magic1_hash: u32,
    /// Hash of the stored MAGIC word with the file's hash function.
    pub magic2_hash: u32,
    /// Feature bits, valid when rwlocks is FEATURE_FLAG_MAGIC.
    pub feature_flags: u32,
    /// Size of the mutex area in front of the file (FEATURE_FLAG_MUTEX).
    pub mutex_size: u32,
}

impl Header {
    /// Parses the header; `order` is the file's byte order.
    pub fn decode(b: &[u8], order: ByteOrder) -> Header {
        let mut magic_food = [0u8; 32];
        magic_food.copy_from_slice(&b[0..32]);
        let f = |i: usize| order.get(&b[32 + i * 4..36 + i * 4]);
        Header {
            magic_food,
            version: f(0),
            hash_size: f(1),
            rwlocks: f(2),
            recovery_start: f(3),
            sequence_number: f(4),
            magic1_hash: f(5),
            magic2_hash: f(6),
            feature_flags: f(7),
            mutex_size: f(8),
        }
    }

    /// The 168 stored bytes of this header (reserved words are zero).
    pub fn encode(&self, order: ByteOrder) -> [u8; HEADER_SIZE as usize] {
        let mut b = [0u8; HEADER_SIZE as usize];
        b[0..32].copy_from_slice(&self.magic_food);
        let words = [
            self.version,
            self.hash_size,
            self.rwlocks,
            self.recovery_start,
            self.sequence_number,
            self.magic1_hash,
            self.magic2_hash,
            self.feature_flags,
            self.mutex_size,
        ];
        for (i, v) in words.into_iter().enumerate() {
            b[32 + i * 4..36 + i * 4].copy_from_slice(&order.put(v));
        }
        b
    }

    /// Whether the magic text is the tdb one (compared up to its NUL, as strcmp does).
    pub fn has_magic_food(&self) -> bool {
        self.magic_food[..MAGIC_FOOD.len()] == *MAGIC_FOOD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_in_both_orders() {
        let r = Record {
            next: 1,
            rec_len: 2,
            key_len: 3,
            data_len: 4,
            full_hash: 5,
            magic: MAGIC,
        };
        for order in [ByteOrder::Native, ByteOrder::Swapped] {
            assert_eq!(Record::decode(&r.encode(order), order), r);
        }
        assert_ne!(r.encode(ByteOrder::Native), r.encode(ByteOrder::Swapped));
    }

    #[test]
    fn layout_constants_match_the_c_struct() {
        assert_eq!(hash_top(0), 172);
        assert_eq!(data_start(131), 168 + 132 * 4);
        assert_eq!(FREE_MAGIC, 0xd9fee666);
    }
}
