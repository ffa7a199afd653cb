//! The record header every record of a clustered database carries in front
//! of its value, and the record containers (`ctdb_rec_data`,
//! `ctdb_rec_buffer`) that move records in controls and messages.

use crate::error::DecodeError;
use crate::ids::{DbId, Pnn};
use crate::wire::{Layout, Reader, Writer};

/// Size of the record header on disk and on the wire.
pub const LTDB_HEADER_LEN: usize = 24;

/// Record flag: the record migrated with its data.
pub const REC_FLAG_MIGRATED_WITH_DATA: u32 = 0x0001_0000;
/// Record flag: the record came back by a vacuum migration.
pub const REC_FLAG_VACUUM_MIGRATED: u32 = 0x0002_0000;
/// Record flag: created by a fetch with an initial header.
pub const REC_FLAG_AUTOMATIC: u32 = 0x0004_0000;
/// Record flag: read-only delegations exist.
pub const REC_RO_HAVE_DELEGATIONS: u32 = 0x0100_0000;
/// Record flag: this copy is a read-only delegation.
pub const REC_RO_HAVE_READONLY: u32 = 0x0200_0000;
/// Record flag: delegations are being revoked.
pub const REC_RO_REVOKING_READONLY: u32 = 0x0400_0000;
/// Record flag: the revoke finished.
pub const REC_RO_REVOKE_COMPLETE: u32 = 0x0800_0000;
/// Every read-only delegation flag.
pub const REC_RO_FLAGS: u32 = REC_RO_HAVE_DELEGATIONS
    | REC_RO_HAVE_READONLY
    | REC_RO_REVOKING_READONLY
    | REC_RO_REVOKE_COMPLETE;

/// Key under which a persistent database keeps its sequence number (the
/// terminating NUL is part of the key).
pub const DB_SEQNUM_KEY: &[u8] = b"__db_sequence_number__\0";

/// `ctdb_ltdb_header`: rsn u64, dmaster u32, reserved1 u32, flags u32 and 4
/// bytes of padding (24 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LtdbHeader {
    /// Record sequence number.
    pub rsn: u64,
    /// The node holding the current copy.
    pub dmaster: Pnn,
    /// Unused by Samba, kept as found.
    pub reserved1: u32,
    /// `REC_FLAG_*` and `REC_RO_*` bits.
    pub flags: u32,
}

impl LtdbHeader {
    /// The header as its 24 bytes.
    pub fn to_array(&self) -> [u8; LTDB_HEADER_LEN] {
        // The layout of `write` (the padding zeroed), without a buffer.
        let mut a = [0u8; LTDB_HEADER_LEN];
        a[0..8].copy_from_slice(&self.rsn.to_le_bytes());
        a[8..12].copy_from_slice(&self.dmaster.0.to_le_bytes());
        a[12..16].copy_from_slice(&self.reserved1.to_le_bytes());
        a[16..20].copy_from_slice(&self.flags.to_le_bytes());
        a
    }

    /// Splits a stored value into its header and the data after it;
    /// `Truncated` when the value is shorter than a header.
    pub fn split(value: &[u8]) -> Result<(LtdbHeader, &[u8]), DecodeError> {
        let mut r = Reader::new(value);
        let h = LtdbHeader::read(&mut r)?;
        Ok((h, r.rest()))
    }
}

impl Layout for LtdbHeader {
    const NAME: &'static str = "ctdb_ltdb_header";
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.rsn)
            .u32(self.dmaster.0)
            .u32(self.reserved1)
            .u32(self.flags)
            .padding(4);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let h = LtdbHeader {
            rsn: r.u64(Self::NAME)?,
            dmaster: Pnn::read(r)?,
            reserved1: r.u32(Self::NAME)?,
            flags: r.u32(Self::NAME)?,
        };
        r.padding(4)?;
        Ok(h)
    }
}

/// Size of the fixed part of a `ctdb_rec_data`.
pub const REC_DATA_FIXED_LEN: usize = 16;

/// `ctdb_rec_data`: length u32 (of the whole entry), reqid u32, keylen u32,
/// datalen u32, key, data; no padding.  In record buffers the data starts
/// with the record's [`LtdbHeader`] (see [`RecData::header`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecData {
    /// The request id (a traverse's id; 0 in buffers).
    pub reqid: u32,
    /// The record key.
    pub key: Vec<u8>,
    /// The record data, header included where the container has one.
    pub data: Vec<u8>,
}

impl RecData {
    /// A record whose data is `header` followed by `value`.
    pub fn with_header(reqid: u32, key: &[u8], header: &LtdbHeader, value: &[u8]) -> RecData {
        let mut data = Vec::with_capacity(LTDB_HEADER_LEN + value.len());
        header.encode(&mut data);
        data.extend_from_slice(value);
        RecData {
            reqid,
            key: key.to_vec(),
            data,
        }
    }

    /// The header at the front of the data and the value after it.
    pub fn header(&self) -> Result<(LtdbHeader, &[u8]), DecodeError> {
        LtdbHeader::split(&self.data)
    }
}

impl Layout for RecData {
    const NAME: &'static str = "ctdb_rec_data";
    fn write(&self, w: &mut Writer<'_>) {
        w.len_u32(REC_DATA_FIXED_LEN + self.key.len() + self.data.len())
            .u32(self.reqid)
            .len_u32(self.key.len())
            .len_u32(self.data.len())
            .bytes(&self.key)
            .bytes(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let length = r.u32(Self::NAME)?;
        let reqid = r.u32(Self::NAME)?;
        let keylen = r.u32("ctdb_rec_data key length")?;
        let datalen = r.u32("ctdb_rec_data data length")?;
        let parts = REC_DATA_FIXED_LEN as u64 + u64::from(keylen) + u64::from(datalen);
        if u64::from(length) != parts {
            return Err(DecodeError::LengthMismatch {
                what: Self::NAME,
                declared: length.into(),
                actual: parts,
            });
        }
        Ok(RecData {
            reqid,
            key: r.blob(keylen, "ctdb_rec_data key")?,
            data: r.blob(datalen, "ctdb_rec_data data")?,
        })
    }
}

/// `ctdb_rec_buffer` (a marshall buffer): db_id u32, count u32, then count
/// [`RecData`] entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecBuffer {
    /// The database the records belong to.
    pub db_id: DbId,
    /// The records.
    pub records: Vec<RecData>,
}

impl Layout for RecBuffer {
    const NAME: &'static str = "ctdb_rec_buffer";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).len_u32(self.records.len());
        for rec in &self.records {
            rec.write(w);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let db_id = DbId::read(r)?;
        let count = r.u32("ctdb_rec_buffer count")?;
        let mut records = Vec::new();
        for _ in 0..count {
            records.push(RecData::read(r)?);
        }
        Ok(RecBuffer { db_id, records })
    }
}

/// One record of a marshall buffer, borrowed from the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecRef<'a> {
    /// The request id.
    pub reqid: u32,
    /// The record key.
    pub key: &'a [u8],
    /// The record data (with its header where the container has one).
    pub data: &'a [u8],
}

impl<'a> RecRef<'a> {
    /// Reads one `ctdb_rec_data` without copying its key or data.
    pub fn read(r: &mut Reader<'a>) -> Result<RecRef<'a>, DecodeError> {
        let length = r.u32(RecData::NAME)?;
        let reqid = r.u32(RecData::NAME)?;
        let keylen = r.u32("ctdb_rec_data key length")?;
        let datalen = r.u32("ctdb_rec_data data length")?;
        let parts = REC_DATA_FIXED_LEN as u64 + u64::from(keylen) + u64::from(datalen);
        if u64::from(length) != parts {
            return Err(DecodeError::LengthMismatch {
                what: RecData::NAME,
                declared: length.into(),
                actual: parts,
            });
        }
        Ok(RecRef {
            reqid,
            key: r.take(keylen as usize, "ctdb_rec_data key")?,
            data: r.take(datalen as usize, "ctdb_rec_data data")?,
        })
    }

    /// The header at the front of the data and the value after it.
    pub fn header(&self) -> Result<(LtdbHeader, &'a [u8]), DecodeError> {
        LtdbHeader::split(self.data)
    }
}

/// A received marshall buffer read in place: its database and its records
/// one by one, each checked as it is read.
#[derive(Clone, Debug)]
pub struct RecBufferRef<'a> {
    /// The database the records belong to.
    pub db_id: DbId,
    /// How many records the buffer says it holds.
    pub count: u32,
    rest: Reader<'a>,
    left: u32,
}

impl<'a> RecBufferRef<'a> {
    /// Reads the buffer's fixed part; the records follow from the iterator.
    pub fn new(bytes: &'a [u8]) -> Result<RecBufferRef<'a>, DecodeError> {
        let mut r = Reader::new(bytes);
        let db_id = DbId::read(&mut r)?;
        let count = r.u32("ctdb_rec_buffer count")?;
        Ok(RecBufferRef {
            db_id,
            count,
            rest: r,
            left: count,
        })
    }

    /// Checks the whole buffer: every record reads, as Samba's unmarshalling
    /// checks it before any record is used.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.clone().try_for_each(|r| r.map(|_| ()))
    }
}

impl<'a> Iterator for RecBufferRef<'a> {
    type Item = Result<RecRef<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = RecRef::read(&mut self.rest);
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

/// Builds a marshall buffer record by record straight into its bytes (no
/// record is kept apart), for senders that stream many records.
#[derive(Clone, Debug)]
pub struct RecBufferWriter {
    bytes: Vec<u8>,
    count: u32,
}

impl RecBufferWriter {
    /// An empty buffer for `db_id`.
    pub fn new(db_id: DbId) -> RecBufferWriter {
        let mut bytes = Vec::with_capacity(8);
        bytes.extend_from_slice(&db_id.0.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        RecBufferWriter { bytes, count: 0 }
    }

    /// Appends a record whose data is `parts` back to back.
    pub fn push(&mut self, reqid: u32, key: &[u8], parts: &[&[u8]]) {
        let data_len: usize = parts.iter().map(|p| p.len()).sum();
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        self.bytes
            .reserve(REC_DATA_FIXED_LEN + key.len() + data_len);
        self.bytes
            .extend_from_slice(&len(REC_DATA_FIXED_LEN + key.len() + data_len));
        self.bytes.extend_from_slice(&reqid.to_le_bytes());
        self.bytes.extend_from_slice(&len(key.len()));
        self.bytes.extend_from_slice(&len(data_len));
        self.bytes.extend_from_slice(key);
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        self.count += 1;
    }

    /// Records appended so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of the buffer so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished buffer's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[4..8].copy_from_slice(&self.count.to_le_bytes());
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = LtdbHeader {
            rsn: 0x0102_0304_0506_0708,
            dmaster: Pnn(7),
            reserved1: 0,
            flags: REC_FLAG_AUTOMATIC,
        };
        let b = h.to_array();
        assert_eq!(&b[0..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[8..12], &[7, 0, 0, 0]);
        assert_eq!(&b[16..20], &[0, 0, 4, 0]);
        assert_eq!(&b[20..24], &[0, 0, 0, 0]);
        assert_eq!(LtdbHeader::decode(&b), Ok(h));
        assert_eq!(b.to_vec(), h.to_bytes());
        assert!(LtdbHeader::decode(&b[..23]).is_err());
        let mut v = b.to_vec();
        v.extend_from_slice(b"xyz");
        assert_eq!(LtdbHeader::split(&v).unwrap(), (h, &b"xyz"[..]));
    }

    #[test]
    fn rec_data_layout_and_length_check() {
        let rec = RecData {
            reqid: 5,
            key: b"ab".to_vec(),
            data: b"xyz".to_vec(),
        };
        let b = rec.to_bytes();
        assert_eq!(b.len(), 21);
        assert_eq!(&b[..16], &[21, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(RecData::decode(&b), Ok(rec));
        let mut bad = b.clone();
        bad[0] = 22;
        assert!(matches!(
            RecData::decode(&bad),
            Err(DecodeError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn buffer_writer_and_reader_agree_with_the_owned_layout() {
        let owned = RecBuffer {
            db_id: DbId(0x1234),
            records: vec![
                RecData {
                    reqid: 0,
                    key: b"k1".to_vec(),
                    data: b"header-and-value".to_vec(),
                },
                RecData {
                    reqid: 9,
                    key: Vec::new(),
                    data: b"x".to_vec(),
                },
            ],
        };
        let mut w = RecBufferWriter::new(DbId(0x1234));
        assert!(w.is_empty());
        w.push(0, b"k1", &[b"header-", b"and-value"]);
        w.push(9, b"", &[b"x"]);
        assert_eq!((w.count(), w.len()), (2, owned.to_bytes().len()));
        let bytes = w.finish();
        assert_eq!(bytes, owned.to_bytes());
        let view = RecBufferRef::new(&bytes).unwrap();
        assert_eq!((view.db_id, view.count), (DbId(0x1234), 2));
        view.validate().unwrap();
        let recs: Vec<RecRef> = view.map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].reqid, recs[0].key, recs[0].data),
            (0, &b"k1"[..], &b"header-and-value"[..])
        );
        assert_eq!((recs[1].reqid, recs[1].key), (9, &b""[..]));
        // A buffer cut short fails at the record it cuts, and only there.
        let cut = &bytes[..bytes.len() - 1];
        let view = RecBufferRef::new(cut).unwrap();
        assert!(view.validate().is_err());
        let results: Vec<_> = RecBufferRef::new(cut).unwrap().collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok() && results[1].is_err());
        assert!(RecBufferRef::new(&bytes[..7]).is_err());
    }
}
