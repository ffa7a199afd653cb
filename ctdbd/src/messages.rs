//! Srvids and messages: which client registered which srvid (and the
//! notifications it left for when it goes), and delivery of REQ_MESSAGE
//! packets to the registered clients.  The leader announcement comes
//! from the recovery daemon (`recoverd/`), a client like any other.

use crate::daemon::Daemon;
use crate::transport::{ClientId, Origin};
use ctdb_protocol::packet::ReqMessage;
use ctdb_protocol::{Operation, Packet, Srvid};
use std::collections::HashMap;

/// Why a notification could not be registered or removed.
#[derive(Debug, PartialEq, Eq)]
pub enum NotifyError {
    /// The client already has a notification for this srvid.
    Exists,
    /// The client has no notification for this srvid.
    Missing,
}

/// Per-client srvid registrations and notifications.
#[derive(Default)]
pub struct Registrations {
    /// srvid → registration count, per client: as in Samba, each
    /// registration is a separate handler that gets its own copy.
    srvids: HashMap<ClientId, HashMap<u64, u32>>,
    /// REGISTER_NOTIFY: (srvid, data) messages delivered (to the clients
    /// registered for srvid) when the client goes away; newest first.
    notify: HashMap<ClientId, Vec<(u64, Vec<u8>)>>,
}

impl Registrations {
    /// Adds one registration of `srvid` for `c`.
    pub fn register(&mut self, c: ClientId, srvid: u64) {
        *self.srvids.entry(c).or_default().entry(srvid).or_insert(0) += 1;
    }

    /// Removes one registration; false when `c` has none for `srvid`.
    pub fn deregister(&mut self, c: ClientId, srvid: u64) -> bool {
        let Some(map) = self.srvids.get_mut(&c) else {
            return false;
        };
        match map.get_mut(&srvid) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    map.remove(&srvid);
                }
                true
            }
            None => false,
        }
    }

    /// True when `c` has at least one registration of `srvid`.
    pub fn has(&self, c: ClientId, srvid: u64) -> bool {
        self.srvids.get(&c).is_some_and(|m| m.contains_key(&srvid))
    }

    /// How many copies of a message to `srvid` client `c` gets: one per
    /// registration of srvid, then one per registration of SRVID_ALL.
    pub fn copies(&self, c: ClientId, srvid: u64) -> u32 {
        self.srvids.get(&c).map_or(0, |m| {
            m.get(&srvid).copied().unwrap_or(0) + m.get(&Srvid::ALL.0).copied().unwrap_or(0)
        })
    }

    /// Leaves a notification for when `c` goes.
    pub fn add_notify(
        &mut self,
        c: ClientId,
        srvid: u64,
        data: Vec<u8>,
    ) -> Result<(), NotifyError> {
        let list = self.notify.entry(c).or_default();
        if list.iter().any(|(s, _)| *s == srvid) {
            return Err(NotifyError::Exists);
        }
        list.insert(0, (srvid, data));
        Ok(())
    }

    /// Removes the notification for `srvid` that `c` left.
    pub fn remove_notify(&mut self, c: ClientId, srvid: u64) -> Result<(), NotifyError> {
        let list = self.notify.entry(c).or_default();
        let i = list
            .iter()
            .position(|(s, _)| *s == srvid)
            .ok_or(NotifyError::Missing)?;
        list.remove(i);
        Ok(())
    }

    /// Forgets a client; returns the notifications it left, to be sent.
    pub fn drop_client(&mut self, c: ClientId) -> Vec<(u64, Vec<u8>)> {
        self.srvids.remove(&c);
        self.notify.remove(&c).unwrap_or_default()
    }
}

impl Daemon {
    /// A REQ_MESSAGE packet from this node to srvid.
    fn message_packet(&self, srvid: u64, data: &[u8]) -> Vec<u8> {
        let msg = ReqMessage {
            srvid: Srvid(srvid),
            data: data.to_vec(),
        };
        Packet::ReqMessage(msg).encode(self.own_header(Operation::ReqMessage, 0))
    }

    /// Sends a message to every live local client registered for srvid (or
    /// for all srvids), one copy per registration.
    pub(crate) fn deliver_message(&mut self, srvid: u64, data: &[u8]) {
        let targets: Vec<ClientId> = self
            .transport
            .live()
            .flat_map(|(c, _)| std::iter::repeat_n(c, self.registrations.copies(c, srvid) as usize))
            .collect();
        let Some((&last, rest)) = targets.split_last() else {
            return;
        };
        let pkt = self.message_packet(srvid, data);
        for c in rest {
            self.send(Origin::Client(*c), pkt.clone());
        }
        self.send(Origin::Client(last), pkt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_count_and_all_adds_copies() {
        let mut r = Registrations::default();
        let c = ClientId(20);
        r.register(c, 5);
        r.register(c, 5);
        r.register(c, Srvid::ALL.0);
        assert_eq!(r.copies(c, 5), 3);
        assert_eq!(r.copies(c, 6), 1);
        assert!(r.deregister(c, 5));
        assert!(r.deregister(c, 5));
        assert!(!r.deregister(c, 5));
        assert!(!r.has(c, 5));
        assert!(!r.deregister(ClientId(21), 5));
    }

    #[test]
    fn notifications_are_unique_per_srvid_and_returned_on_drop() {
        let mut r = Registrations::default();
        let c = ClientId(20);
        assert_eq!(r.add_notify(c, 1, vec![1]), Ok(()));
        assert_eq!(r.add_notify(c, 1, vec![2]), Err(NotifyError::Exists));
        assert_eq!(r.add_notify(c, 2, vec![3]), Ok(()));
        assert_eq!(r.remove_notify(c, 9), Err(NotifyError::Missing));
        assert_eq!(r.drop_client(c), vec![(2, vec![3]), (1, vec![1])]);
        assert!(r.drop_client(c).is_empty());
    }
}
