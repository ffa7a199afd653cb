//! The tdb side of read-only delegations (Samba's ctdb_request_call and
//! revoke child, readonlyrecords.txt): under the record's chain lock, the
//! dmaster grants read-only copies and records the delegated nodes in the
//! tracking database (a bitmap of pnns per key), and a write first marks
//! the record REVOKING_READONLY until every copy is revoked.

use super::ops::terr;
use super::{CallSpec, Reply, Revoke, CALL_FETCH_WITH_HEADER_FUNC, CALL_FLAG_WANT_READONLY};
use crate::ltdb::{self, Header, Kind, NodeView};
use crate::vacuum::DeleteQueue;
use ctdb_protocol::ltdb::{
    REC_RO_FLAGS, REC_RO_HAVE_DELEGATIONS, REC_RO_HAVE_READONLY, REC_RO_REVOKE_COMPLETE,
    REC_RO_REVOKING_READONLY,
};
use tdb_engine::{StoreFlag, Tdb, TdbError};

/// A tracking record with `pnn`'s bit set (byte pnn/8, bit pnn%8, grown
/// as needed), as Samba's tracking database stores delegated nodes.
pub fn tracking_add(bits: &mut Vec<u8>, pnn: u32) {
    let byte = (pnn / 8) as usize;
    if bits.len() <= byte {
        bits.resize(byte + 1, 0);
    }
    bits[byte] |= 1 << (pnn % 8);
}

/// The pnns whose bit a tracking record sets, in increasing order.
pub fn tracking_nodes(bits: &[u8]) -> Vec<u32> {
    let mut nodes = Vec::new();
    for (i, b) in bits.iter().enumerate() {
        for j in 0..8 {
            if b & (1 << j) != 0 {
                nodes.push(i as u32 * 8 + j);
            }
        }
    }
    nodes
}

/// The record and its database as one read-only step sees them.
pub(super) struct Chain<'a> {
    pub t: &'a mut Tdb,
    pub q: &'a mut DeleteQueue,
    pub tracking: Option<&'a mut Tdb>,
    pub kind: Kind,
    pub node: NodeView,
    pub key: &'a [u8],
}

impl Chain<'_> {
    /// Stores the record as the daemon does; Err is the failed reply.
    fn store(&mut self, header: &mut Header, data: &[u8]) -> Result<(), Reply> {
        match ltdb::store(self.t, self.kind, self.node, self.key, header, data) {
            Ok(a) => {
                self.q.apply(self.key, header, a);
                Ok(())
            }
            Err(e) => Err(terr("store", e)),
        }
    }
}

/// The read-only rules a REQ_CALL meets before it runs or migrates the
/// record, in Samba's order: a completed revoke is cleared (the record is
/// stored without read-only flags, its tracking record deleted); during a
/// revoke the call waits (`Revoking`); a node that is neither dmaster nor
/// holding delegations names the dmaster (`NotDmaster`); a call that does
/// not want a read-only copy of a record with delegations starts their
/// revoke (`Revoke`); a WANT_READONLY fetch-with-header from another node
/// gets a delegation (`Delegated`).  None: the call goes on as usual with
/// `header` as stored now.
pub(super) fn gate(
    c: &mut Chain<'_>,
    header: &mut Header,
    data: &[u8],
    call: &CallSpec,
    requester: u32,
) -> Option<Reply> {
    let want_ro = call.flags & CALL_FLAG_WANT_READONLY != 0 && c.tracking.is_some();
    if header.flags & REC_RO_REVOKE_COMPLETE != 0 {
        header.flags &= !REC_RO_FLAGS;
        if let Err(r) = c.store(header, data) {
            return Some(r);
        }
        if let Some(tr) = c.tracking.as_deref_mut() {
            let _ = tr.delete(c.key);
        }
    }
    if header.flags & REC_RO_REVOKING_READONLY != 0 {
        return Some(Reply::Revoking);
    }
    if header.dmaster != c.node.pnn && header.flags & REC_RO_HAVE_DELEGATIONS == 0 {
        return Some(Reply::NotDmaster {
            dmaster: header.dmaster,
        });
    }
    if !want_ro && header.flags & (REC_RO_HAVE_DELEGATIONS | REC_RO_HAVE_READONLY) != 0 {
        return Some(start_revoke(c, header, data));
    }
    if want_ro && call.callid == CALL_FETCH_WITH_HEADER_FUNC && requester != c.node.pnn {
        return Some(delegate(c, header, data, requester));
    }
    None
}

/// Marks the record REVOKING_READONLY and says what the delegated nodes
/// must store (Samba's ctdb_start_revoke_ro_record).
fn start_revoke(c: &mut Chain<'_>, header: &mut Header, data: &[u8]) -> Reply {
    header.flags |= REC_RO_REVOKING_READONLY;
    if let Err(r) = c.store(header, data) {
        return r;
    }
    let mut sent = *header;
    sent.flags &= !(REC_RO_REVOKING_READONLY | REC_RO_HAVE_DELEGATIONS | REC_RO_HAVE_READONLY);
    sent.flags |= ltdb::REC_FLAG_MIGRATED_WITH_DATA;
    sent.rsn = sent.rsn.wrapping_sub(1);
    let nodes = match c.tracking.as_deref_mut().map(|tr| tr.fetch(c.key)) {
        Some(Ok(bits)) => tracking_nodes(&bits),
        _ => Vec::new(),
    };
    Reply::Revoke(Revoke {
        header: sent,
        data: data.to_vec(),
        nodes,
    })
}

/// Grants `requester` a read-only copy: the first delegation adds 3 to the
/// rsn and sets HAVE_DELEGATIONS; the requester is tracked; the copy's
/// header has the rsn less 2 and HAVE_READONLY instead of HAVE_DELEGATIONS.
fn delegate(c: &mut Chain<'_>, header: &mut Header, data: &[u8], requester: u32) -> Reply {
    if header.flags & REC_RO_HAVE_DELEGATIONS == 0 {
        header.rsn += 3;
        header.flags |= REC_RO_HAVE_DELEGATIONS;
        if let Err(r) = c.store(header, data) {
            return r;
        }
    }
    if let Some(tr) = c.tracking.as_deref_mut() {
        let mut bits = match tr.fetch(c.key) {
            Ok(b) => b,
            Err(TdbError::NoExist) => Vec::new(),
            Err(e) => return terr("tracking fetch", e),
        };
        tracking_add(&mut bits, requester);
        if let Err(e) = tr.store(c.key, &[&bits], StoreFlag::Replace) {
            return terr("tracking store", e);
        }
    }
    let mut copy = *header;
    copy.rsn = copy.rsn.wrapping_sub(2);
    copy.flags |= REC_RO_HAVE_READONLY;
    copy.flags &= !REC_RO_HAVE_DELEGATIONS;
    let mut reply = copy.encode().to_vec();
    reply.extend_from_slice(data);
    Reply::Delegated { data: reply }
}

/// The end of a revoke (Samba's revoke child after the UPDATE_RECORDs):
/// the record must still be marked REVOKING_READONLY and HAVE_DELEGATIONS
/// with an rsn no higher than the one sent plus one; then it is marked
/// REVOKE_COMPLETE (rsn plus one) when every node answered, or has
/// REVOKING_READONLY cleared so that the next call revokes again.
pub(super) fn finish_revoke(c: &mut Chain<'_>, sent_rsn: u64, ok: bool) -> Reply {
    let (mut header, data) = match ltdb::fetch(c.t, c.kind, c.node, c.key, c.q) {
        Ok(x) => x,
        Err(e) => return terr("fetch", e),
    };
    if header.rsn > sent_rsn.wrapping_add(1) {
        return Reply::Failed("RSN too high in tdb record in revoke".into());
    }
    let both = REC_RO_REVOKING_READONLY | REC_RO_HAVE_DELEGATIONS;
    if header.flags & both != both {
        return Reply::Failed("Flags are wrong in tdb record in revoke".into());
    }
    if ok {
        header.rsn += 1;
        header.flags |= REC_RO_REVOKE_COMPLETE;
    } else {
        header.flags &= !REC_RO_REVOKING_READONLY;
    }
    match c.store(&mut header, &data) {
        Ok(()) if ok => Reply::Ok,
        Ok(()) => Reply::Failed("Revoke all delegations failed, retrying.".into()),
        Err(r) => r,
    }
}

/// Stores a read-only copy from the dmaster when its rsn is newer than the
/// local copy's (Samba's ctdb_reply_call for FETCH_WITH_HEADER); a copy
/// without HAVE_READONLY is not stored.
pub(super) fn store_readonly(c: &mut Chain<'_>, mut header: Header, data: &[u8]) -> Reply {
    if header.flags & REC_RO_HAVE_READONLY == 0 {
        return Reply::Ok;
    }
    let (old, _) = match ltdb::fetch(c.t, c.kind, c.node, c.key, c.q) {
        Ok(x) => x,
        Err(e) => return terr("fetch", e),
    };
    if header.rsn <= old.rsn {
        return Reply::Ok;
    }
    match c.store(&mut header, data) {
        Ok(()) => Reply::Ok,
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_bits_are_samba_bytes() {
        let mut b = Vec::new();
        tracking_add(&mut b, 2);
        assert_eq!(b, [0x04]);
        tracking_add(&mut b, 9);
        tracking_add(&mut b, 0);
        assert_eq!(b, [0x05, 0x02]);
        assert_eq!(tracking_nodes(&b), [0, 2, 9]);
        tracking_add(&mut b, 2);
        assert_eq!(tracking_nodes(&b), [0, 2, 9]);
        assert!(tracking_nodes(&[]).is_empty());
    }
}
