//! This node's public addresses and their interfaces: what
//! public_addresses lists (plus ADD_PUBLIC_IP, minus DEL_PUBLIC_IP), which
//! node each address is believed to be on, which interface an address this
//! node holds is on, and each interface's link state and reference count.
//! Pure bookkeeping, as Samba's vnn list: TAKEOVER_IP and RELEASE_IP
//! decide here what to do; the event that configures the address
//! (takeip/releaseip) is the caller's to run.
//!
//! Lists are kept in Samba's order: a new address or interface goes first.

use ctdb_protocol::types::Connection;
use ctdb_protocol::Pnn;
use std::fmt;
use std::net::IpAddr;

/// The longest interface name the protocol carries (CTDB_IFACE_SIZE).
pub const IFACE_NAME_MAX: usize = 16;

/// A network interface public addresses may be put on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its link is up (as last set with SET_IFACE_LINK_STATE; up at start).
    pub link_up: bool,
    /// How many addresses this node holds on it.
    pub references: u32,
}

/// One public address (Samba's vnn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicAddress {
    /// The address.
    pub addr: IpAddr,
    /// Its netmask bits.
    pub mask_bits: u8,
    /// The interfaces it may go on, in the configured order.
    pub ifaces: Vec<String>,
    /// The interface it is on while this node holds it.
    pub active: Option<String>,
    /// The node believed to hold it ([`Pnn::UNKNOWN`] if none).
    pub holder: Pnn,
    /// DEL_PUBLIC_IP came while this node held it: it goes at its release.
    pub delete_pending: bool,
    /// The TCP connections to it clients registered (its tickle list).
    pub tickles: Vec<Connection>,
    /// The tickle list changed here since the other nodes were told.
    pub tickles_changed: bool,
    /// A takeip, updateip or releaseip event of it is running.
    pub in_flight: bool,
}

/// What SET_TCP_TICKLE_LIST did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickleUpdate {
    /// Not a public address (status 1).
    NotPublic,
    /// This node holds the address: its own list wins (status 0).
    HeldHere,
    /// The list was replaced (status 0).
    Replaced,
}

/// One line of a public_addresses file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfiguredAddress {
    /// The address.
    pub addr: IpAddr,
    /// Its netmask bits.
    pub mask_bits: u8,
    /// Its interfaces.
    pub ifaces: Vec<String>,
}

/// Why a public address could not be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The address is configured already.
    Duplicate(IpAddr),
    /// An interface does not exist on this host.
    UnknownInterface {
        /// The interface.
        iface: String,
        /// The address.
        addr: IpAddr,
    },
    /// An interface name is longer than the protocol carries.
    NameTooLong(String),
    /// No interface was given.
    NoInterface(IpAddr),
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddError::Duplicate(a) => write!(f, "Duplicate public IP address '{a}'"),
            AddError::UnknownInterface { iface, addr } => {
                write!(f, "Unknown interface {iface} for public address {addr}")
            }
            AddError::NameTooLong(n) => write!(f, "Interface name too long \"{n}\""),
            AddError::NoInterface(a) => write!(f, "No interface specified for {a}"),
        }
    }
}

/// Why TAKEOVER_IP or RELEASE_IP failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveError {
    /// TAKEOVER_IP named another node.
    NotForThisNode {
        /// The address.
        addr: IpAddr,
        /// The node it named.
        pnn: Pnn,
    },
    /// No interface of the address has its link up.
    NoUsableInterface(IpAddr),
    /// The address is on an interface here but assigned to another node.
    HeldElsewhere {
        /// The address.
        addr: IpAddr,
        /// The node it is assigned to.
        pnn: Pnn,
    },
}

impl fmt::Display for MoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoveError::NotForThisNode { addr, pnn } => {
                write!(f, "takeoverip called for an ip '{addr}' with pnn {pnn}")
            }
            MoveError::NoUsableInterface(a) => {
                write!(f, "takeoverip of IP {a} failed to find a usable interface")
            }
            MoveError::HeldElsewhere { addr, pnn } => write!(
                f,
                "takeoverip of IP {addr} is known to the kernel but assigned to node {pnn}"
            ),
        }
    }
}

/// What a TAKEOVER_IP or RELEASE_IP asks of the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Not a public address of this node: nothing to do (success).
    NotPublic,
    /// Nothing to do (the address is where it should be); the holder
    /// this node believes in may have changed.
    Redundant,
    /// Run the takeip event (iface, address, mask bits); the address is
    /// this node's now.
    TakeIp(EventArgs),
    /// Run the updateip event (old iface, new iface, address, mask bits).
    UpdateIp {
        /// The interface it was on.
        old: String,
        /// The arguments with the new interface.
        args: EventArgs,
    },
    /// Run the releaseip event, then call [`PublicAddresses::released`].
    ReleaseIp(EventArgs),
}

impl PublicAddress {
    /// The interface it is on, as address events name it ("__none__" when
    /// it is on none).
    pub fn active_iface(&self) -> String {
        self.active.clone().unwrap_or_else(|| "__none__".into())
    }

    /// The arguments of its address events on its interface.
    pub fn event_args(&self) -> EventArgs {
        EventArgs {
            iface: self.active_iface(),
            addr: self.addr,
            mask_bits: self.mask_bits,
        }
    }
}

/// The arguments of an address event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventArgs {
    /// The interface.
    pub iface: String,
    /// The address.
    pub addr: IpAddr,
    /// Its mask bits.
    pub mask_bits: u8,
}

/// This node's public addresses.
#[derive(Clone, Debug)]
pub struct PublicAddresses {
    pnn: Pnn,
    /// The interfaces, newest first.
    pub ifaces: Vec<Interface>,
    /// The addresses, newest first.
    pub addrs: Vec<PublicAddress>,
}

/// Parses a public_addresses file: "ADDR/BITS IFACE[,IFACE...]" lines,
/// blank lines and '#' comments skipped. Errors name the line.
pub fn parse_file(text: &str) -> Result<Vec<ConfiguredAddress>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
        let addr = words.next().unwrap_or("");
        let Some(ifaces) = words.next() else {
            return Err(format!(
                "No interface specified at line {} of public addresses file",
                n + 1
            ));
        };
        let parsed = addr
            .split_once('/')
            .and_then(|(a, b)| Some((a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?)));
        let Some((addr, mask_bits)) = parsed else {
            return Err(format!(
                "Badly formed line {} in public address list",
                n + 1
            ));
        };
        out.push(ConfiguredAddress {
            addr,
            mask_bits,
            ifaces: ifaces
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    Ok(out)
}

/// The host has an interface named `name` (if_nametoindex finds it).
pub fn iface_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

impl PublicAddresses {
    /// No addresses, for node `pnn`.
    pub fn new(pnn: Pnn) -> PublicAddresses {
        PublicAddresses {
            pnn,
            ifaces: Vec::new(),
            addrs: Vec::new(),
        }
    }

    /// Adds an address (it goes first); its interfaces must exist
    /// (`exists`) and unknown ones are added (first, link up).
    pub fn add(
        &mut self,
        c: &ConfiguredAddress,
        exists: &dyn Fn(&str) -> bool,
    ) -> Result<(), AddError> {
        if self.addrs.iter().any(|a| a.addr == c.addr) {
            return Err(AddError::Duplicate(c.addr));
        }
        if c.ifaces.is_empty() {
            return Err(AddError::NoInterface(c.addr));
        }
        for name in &c.ifaces {
            if name.len() > IFACE_NAME_MAX {
                return Err(AddError::NameTooLong(name.clone()));
            }
            if !exists(name) {
                return Err(AddError::UnknownInterface {
                    iface: name.clone(),
                    addr: c.addr,
                });
            }
        }
        for name in &c.ifaces {
            if self.iface(name).is_none() {
                self.ifaces.insert(
                    0,
                    Interface {
                        name: name.clone(),
                        link_up: true,
                        references: 0,
                    },
                );
            }
        }
        self.addrs.insert(
            0,
            PublicAddress {
                addr: c.addr,
                mask_bits: c.mask_bits,
                ifaces: c.ifaces.clone(),
                active: None,
                holder: Pnn::UNKNOWN,
                delete_pending: false,
                tickles: Vec::new(),
                tickles_changed: false,
                in_flight: false,
            },
        );
        Ok(())
    }

    /// The interface named `name`.
    pub fn iface(&self, name: &str) -> Option<&Interface> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    fn iface_mut(&mut self, name: &str) -> Option<&mut Interface> {
        self.ifaces.iter_mut().find(|i| i.name == name)
    }

    /// The address `addr`.
    pub fn find(&self, addr: IpAddr) -> Option<&PublicAddress> {
        self.addrs.iter().find(|a| a.addr == addr)
    }

    fn index(&self, addr: IpAddr) -> Option<usize> {
        self.addrs.iter().position(|a| a.addr == addr)
    }

    /// DEL_PUBLIC_IP: an address this node holds is marked to go at its
    /// release (true returned); any other goes now, with the interfaces
    /// no other address names. `None` if it is not configured.
    pub fn delete(&mut self, addr: IpAddr) -> Option<bool> {
        let i = self.index(addr)?;
        if self.addrs[i].holder == self.pnn {
            self.addrs[i].delete_pending = true;
            return Some(true);
        }
        self.remove(i);
        Some(false)
    }

    fn remove(&mut self, i: usize) {
        self.unassign_iface(i);
        let gone = self.addrs.remove(i);
        self.ifaces.retain(|f| {
            !gone.ifaces.contains(&f.name) || self.addrs.iter().any(|a| a.ifaces.contains(&f.name))
        });
    }

    /// Whether this node could host address `a` now: `node_ok` (RUNNING,
    /// neither inactive nor disabled), not being deleted, and an interface
    /// with its link up.
    pub fn available(&self, a: &PublicAddress, node_ok: bool) -> bool {
        if !node_ok || a.delete_pending {
            return false;
        }
        let up = |n: &String| self.iface(n).is_some_and(|i| i.link_up);
        a.active.as_ref().is_some_and(up) || a.ifaces.iter().any(up)
    }

    /// The interface an address should go on: link up, fewest references,
    /// the first configured on a tie.
    fn best_iface(&self, i: usize) -> Option<String> {
        let mut best: Option<&Interface> = None;
        for name in &self.addrs[i].ifaces {
            let Some(cur) = self.iface(name).filter(|f| f.link_up) else {
                continue;
            };
            if best.is_none_or(|b| cur.references < b.references) {
                best = Some(cur);
            }
        }
        best.map(|b| b.name.clone())
    }

    fn assign_iface(&mut self, i: usize, name: &str) {
        if self.addrs[i].active.is_some() {
            return;
        }
        if let Some(f) = self.iface_mut(name) {
            f.references += 1;
        }
        self.addrs[i].active = Some(name.to_string());
        self.addrs[i].holder = self.pnn;
    }

    fn unassign_iface(&mut self, i: usize) {
        if let Some(name) = self.addrs[i].active.take() {
            if let Some(f) = self.iface_mut(&name) {
                f.references = f.references.saturating_sub(1);
            }
        }
        if self.addrs[i].holder == self.pnn {
            self.addrs[i].holder = Pnn::UNKNOWN;
        }
    }

    /// TAKEOVER_IP of `addr` to `pnn`. `have_ip`: the address is on an
    /// interface of this host (only checked outside test mode; false
    /// otherwise). On [`Step::TakeIp`] and [`Step::UpdateIp`] the address
    /// is recorded as held here on the chosen interface.
    pub fn takeover(&mut self, addr: IpAddr, pnn: Pnn, have_ip: bool) -> Result<Step, MoveError> {
        if pnn != self.pnn {
            return Err(MoveError::NotForThisNode { addr, pnn });
        }
        let Some(i) = self.index(addr) else {
            return Ok(Step::NotPublic);
        };
        let best = self
            .best_iface(i)
            .ok_or(MoveError::NoUsableInterface(addr))?;
        let holder = self.addrs[i].holder;
        if holder != self.pnn && have_ip && holder != Pnn::UNKNOWN {
            return Err(MoveError::HeldElsewhere { addr, pnn: holder });
        }
        let mut update = holder == Pnn::UNKNOWN && have_ip;
        if let Some(cur) = self.addrs[i].active.clone().filter(|c| *c != best) {
            let (cur_up, cur_refs) = self
                .iface(&cur)
                .map_or((false, 0), |f| (f.link_up, f.references));
            let best_refs = self.iface(&best).map_or(0, |f| f.references);
            if !cur_up || cur_refs > best_refs + 1 {
                update = true;
            }
        }
        let a = &self.addrs[i];
        let args = |iface: String| EventArgs {
            iface,
            addr,
            mask_bits: a.mask_bits,
        };
        if !have_ip {
            if update {
                self.unassign_iface(i);
            }
            self.assign_iface(i, &best);
            let iface = self.addrs[i].active.clone().unwrap_or(best);
            let a = &self.addrs[i];
            return Ok(Step::TakeIp(EventArgs {
                iface,
                addr,
                mask_bits: a.mask_bits,
            }));
        }
        if update {
            let old = a.active_iface();
            let step = Step::UpdateIp {
                old,
                args: args(best.clone()),
            };
            self.unassign_iface(i);
            self.assign_iface(i, &best);
            return Ok(step);
        }
        Ok(Step::Redundant)
    }

    /// RELEASE_IP of `addr`, which is to be on node `to`. `checked`: the
    /// host's addresses are checked (outside test mode), then `have_ip`
    /// says whether the address is on an interface. A release of an
    /// address not held here only records `to` as its holder.
    pub fn release(&mut self, addr: IpAddr, to: Pnn, checked: bool, have_ip: bool) -> Step {
        let Some(i) = self.index(addr) else {
            return Step::NotPublic;
        };
        let held = if checked {
            have_ip
        } else {
            self.addrs[i].active.is_some()
        };
        if !held {
            self.addrs[i].holder = to;
            if checked {
                self.unassign_iface(i);
            }
            return Step::Redundant;
        }
        Step::ReleaseIp(self.addrs[i].event_args())
    }

    /// Marks an event of `addr` as running or ended.
    pub fn set_in_flight(&mut self, addr: IpAddr, running: bool) {
        if let Some(i) = self.index(addr) {
            self.addrs[i].in_flight = running;
        }
    }

    /// A failed updateip: `addr` goes back on interface `old`.
    pub fn move_back(&mut self, addr: IpAddr, old: &str) {
        if let Some(i) = self.index(addr) {
            self.unassign_iface(i);
            if self.iface(old).is_some() {
                self.assign_iface(i, old);
            }
        }
    }

    /// The releaseip event for `addr` finished: the address is on `to`
    /// now, off its interface here, and gone if its deletion was pending.
    pub fn released(&mut self, addr: IpAddr, to: Pnn) {
        let Some(i) = self.index(addr) else {
            return;
        };
        self.addrs[i].holder = to;
        self.unassign_iface(i);
        if self.addrs[i].delete_pending {
            self.remove(i);
        }
    }

    /// TCP_ADD: records a connection to public address `conn.dst` (once).
    /// `changed` marks the list for the other nodes (TCP_ADD_DELAYED_UPDATE).
    /// False when `conn.dst` is no public address.
    pub fn add_tickle(&mut self, addr: IpAddr, conn: Connection, changed: bool) -> bool {
        let Some(i) = self.index(addr) else {
            return false;
        };
        let a = &mut self.addrs[i];
        if !a.tickles.contains(&conn) {
            a.tickles.push(conn);
            a.tickles_changed |= changed;
        }
        true
    }

    /// After a takeover: the tickle list of `addr`, which is left empty
    /// (marked changed if it was not, so the other nodes learn it).
    pub fn take_tickles(&mut self, addr: IpAddr) -> Vec<Connection> {
        let Some(i) = self.index(addr) else {
            return Vec::new();
        };
        let a = &mut self.addrs[i];
        let list = std::mem::take(&mut a.tickles);
        if !list.is_empty() {
            a.tickles_changed = true;
        }
        list
    }

    /// TCP_REMOVE: forgets a connection (the last one takes its place, as
    /// in Samba). False when `addr` is no public address.
    pub fn remove_tickle(&mut self, addr: IpAddr, conn: &Connection) -> bool {
        let Some(i) = self.index(addr) else {
            return false;
        };
        let a = &mut self.addrs[i];
        if let Some(j) = a.tickles.iter().position(|c| c == conn) {
            a.tickles.swap_remove(j);
            a.tickles_changed = true;
        }
        true
    }

    /// GET_TCP_TICKLE_LIST: the connections to `addr` whose server port is
    /// `port` (all for port 0); `None` when it is no public address.
    pub fn tickles(&self, addr: IpAddr, port: u16) -> Option<Vec<Connection>> {
        let a = self.find(addr)?;
        let port_of = |c: &Connection| c.dst.to_socket_addr().map_or(0, |s| s.port());
        Some(
            a.tickles
                .iter()
                .filter(|c| port == 0 || port_of(c) == port)
                .cloned()
                .collect(),
        )
    }

    /// SET_TCP_TICKLE_LIST from the holder: replaces the list of an
    /// address this node does not hold.
    pub fn set_tickles(&mut self, addr: IpAddr, list: Vec<Connection>) -> TickleUpdate {
        let Some(i) = self.index(addr) else {
            return TickleUpdate::NotPublic;
        };
        if self.addrs[i].holder == self.pnn {
            return TickleUpdate::HeldHere;
        }
        self.addrs[i].tickles = list;
        TickleUpdate::Replaced
    }

    /// SET_IFACE_LINK_STATE: `None` for an unknown interface, else whether
    /// the state changed.
    pub fn set_link(&mut self, name: &str, up: bool) -> Option<bool> {
        let f = self.iface_mut(name)?;
        let changed = f.link_up != up;
        f.link_up = up;
        Some(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(addr: &str, ifaces: &str) -> ConfiguredAddress {
        ConfiguredAddress {
            addr: addr.parse().unwrap(),
            mask_bits: 24,
            ifaces: ifaces.split(',').map(str::to_string).collect(),
        }
    }

    fn table() -> PublicAddresses {
        let mut t = PublicAddresses::new(Pnn(1));
        t.add(&conf("192.0.2.1", "eth1,eth2"), &|_| true).unwrap();
        t.add(&conf("192.0.2.2", "eth2,eth1"), &|_| true).unwrap();
        t
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_skips_comments_and_names_bad_lines() {
        let c = parse_file("# x\n\n 192.0.2.1/24 eth0,eth1\nfd00::1/64\tlo\n").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ifaces, ["eth0", "eth1"]);
        assert_eq!(c[1].mask_bits, 64);
        assert!(parse_file("192.0.2.1/24\n").unwrap_err().contains("line 1"));
        assert!(parse_file("192.0.2.1 eth0\n")
            .unwrap_err()
            .contains("Badly formed line 1"));
    }

    #[test]
    fn newest_address_and_interface_come_first() {
        let t = table();
        let addrs: Vec<String> = t.addrs.iter().map(|a| a.addr.to_string()).collect();
        assert_eq!(addrs, ["192.0.2.2", "192.0.2.1"]);
        let names: Vec<&str> = t.ifaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth2", "eth1"]);
    }

    #[test]
    fn add_refuses_duplicates_and_missing_interfaces() {
        let mut t = table();
        assert_eq!(
            t.add(&conf("192.0.2.1", "eth1"), &|_| true),
            Err(AddError::Duplicate(ip("192.0.2.1")))
        );
        let e = t
            .add(&conf("192.0.2.9", "nope"), &|n| n != "nope")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown interface nope for public address 192.0.2.9"
        );
    }

    #[test]
    fn takeover_holds_on_least_used_interface_and_release_records_new_holder() {
        let mut t = table();
        let s = t.takeover(ip("192.0.2.1"), Pnn(1), false).unwrap();
        assert!(matches!(&s, Step::TakeIp(a) if a.iface == "eth1"));
        let s = t.takeover(ip("192.0.2.2"), Pnn(1), false).unwrap();
        // eth2 is first for this address and has no references.
        assert!(matches!(&s, Step::TakeIp(a) if a.iface == "eth2"));
        assert_eq!(t.find(ip("192.0.2.2")).unwrap().holder, Pnn(1));
        assert_eq!(t.iface("eth1").unwrap().references, 1);
        // Release (test mode: held means on an interface).
        let s = t.release(ip("192.0.2.2"), Pnn(0), false, false);
        assert!(matches!(s, Step::ReleaseIp(_)));
        t.released(ip("192.0.2.2"), Pnn(0));
        let a = t.find(ip("192.0.2.2")).unwrap();
        assert_eq!((a.holder, a.active.clone()), (Pnn(0), None));
        assert_eq!(t.iface("eth2").unwrap().references, 0);
        // A redundant release only records the holder.
        assert_eq!(
            t.release(ip("192.0.2.2"), Pnn(2), false, false),
            Step::Redundant
        );
        assert_eq!(t.find(ip("192.0.2.2")).unwrap().holder, Pnn(2));
    }

    #[test]
    fn takeover_for_another_node_or_without_link_fails() {
        let mut t = table();
        assert!(matches!(
            t.takeover(ip("192.0.2.1"), Pnn(0), false),
            Err(MoveError::NotForThisNode { .. })
        ));
        t.set_link("eth1", false);
        t.set_link("eth2", false);
        assert_eq!(
            t.takeover(ip("192.0.2.1"), Pnn(1), false),
            Err(MoveError::NoUsableInterface(ip("192.0.2.1")))
        );
        assert!(!t.available(&t.addrs[0], true));
        assert_eq!(t.set_link("eth1", true), Some(true));
        assert_eq!(t.set_link("eth1", true), Some(false));
        assert!(t.available(&t.addrs[0], true));
        assert!(!t.available(&t.addrs[0], false));
        assert_eq!(t.set_link("nope", true), None);
        assert_eq!(
            t.takeover(ip("198.51.100.1"), Pnn(1), false),
            Ok(Step::NotPublic)
        );
    }

    fn conn(src: &str, dst: &str) -> Connection {
        let sa = |s: &str| {
            ctdb_protocol::wire::SockAddr::from(s.parse::<std::net::SocketAddr>().unwrap())
        };
        Connection {
            src: sa(src),
            dst: sa(dst),
        }
    }

    #[test]
    fn tickles_are_kept_once_filtered_by_port_and_replaced_unless_held() {
        let mut t = table();
        let a = ip("192.0.2.1");
        let c1 = conn("198.51.100.9:1000", "192.0.2.1:445");
        let c2 = conn("198.51.100.9:1001", "192.0.2.1:139");
        assert!(t.add_tickle(a, c1, false));
        assert!(t.add_tickle(a, c1, true));
        assert!(t.add_tickle(a, c2, false));
        assert!(!t.add_tickle(ip("198.51.100.1"), c1, false));
        assert_eq!(t.tickles(a, 0).unwrap(), [c1, c2]);
        assert_eq!(t.tickles(a, 139).unwrap(), [c2]);
        assert!(t.remove_tickle(a, &c1));
        assert_eq!(t.tickles(a, 0).unwrap(), [c2]);
        assert_eq!(t.set_tickles(a, vec![c1]), TickleUpdate::Replaced);
        assert_eq!(t.tickles(a, 0).unwrap(), [c1]);
        t.takeover(a, Pnn(1), false).unwrap();
        assert_eq!(t.set_tickles(a, vec![]), TickleUpdate::HeldHere);
        assert_eq!(
            t.set_tickles(ip("198.51.100.1"), vec![]),
            TickleUpdate::NotPublic
        );
        assert_eq!(t.tickles(ip("198.51.100.1"), 0), None);
    }

    #[test]
    fn delete_of_held_address_waits_for_its_release() {
        let mut t = table();
        t.takeover(ip("192.0.2.1"), Pnn(1), false).unwrap();
        assert_eq!(t.delete(ip("192.0.2.1")), Some(true));
        assert!(!t.available(t.find(ip("192.0.2.1")).unwrap(), true));
        t.released(ip("192.0.2.1"), Pnn::UNKNOWN);
        assert!(t.find(ip("192.0.2.1")).is_none());
        // Both interfaces are still named by 192.0.2.2.
        assert_eq!(t.ifaces.len(), 2);
        assert_eq!(t.delete(ip("192.0.2.2")), Some(false));
        assert!(t.ifaces.is_empty());
        assert_eq!(t.delete(ip("192.0.2.2")), None);
    }
}
