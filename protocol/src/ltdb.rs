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
        let mut a = [0u8; LTDB_HEADER_LEN];
        a.copy_from_slice(&self.to_bytes());
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
}
