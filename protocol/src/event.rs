//! The event daemon's socket protocol (Samba 4.17's `ctdb-eventd`): the
//! packets ctdbd and the `ctdb-event` tool send to the event daemon and the
//! replies it sends back.
//!
//! A packet is a 12-byte [`EventHeader`] (total length, version, reqid)
//! followed by a body.  A request body is the command (u32) and the
//! command's fields; a reply body is the command, the result (an errno,
//! 0 for success) and, for a successful STATUS, the [`StatusReply`].
//! Strings are Samba's "stringn": a u32 length (string plus NUL, 0 for no
//! string) then the bytes.  Integers are host order (little-endian); a
//! timeval is two i64.
//!
//! Samba's client and daemon both leave the header's version at 0, so
//! [`encode_request`] and [`encode_reply`] write 0 too and decoding does
//! not check it.

use crate::error::DecodeError;
use crate::wire::{Layout, Reader, Timeval, Writer};

/// The protocol version Samba declares (and never sends: its headers carry 0).
pub const EVENT_PROTOCOL_VERSION: u32 = 1;
/// RUN flag: go on running the remaining scripts after one fails.
pub const RUN_ALL: u32 = 1;
/// Bytes in an [`EventHeader`].
pub const EVENT_HEADER_LEN: usize = 12;
/// Largest packet this crate accepts from a peer (the daemon's own limit on
/// what a client may make it buffer; replies with long script output are
/// far below it).
pub const MAX_EVENT_PACKET: u32 = 16 * 1024 * 1024;

/// The header in front of every request and reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// Total packet length, header included.
    pub length: u32,
    /// Protocol version field (0 in everything Samba sends).
    pub version: u32,
    /// Request id, copied from a request into its reply.
    pub reqid: u32,
}

impl Layout for EventHeader {
    const NAME: &'static str = "ctdb_event_header";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.length).u32(self.version).u32(self.reqid);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EventHeader {
            length: r.u32("event header length")?,
            version: r.u32("event header version")?,
            reqid: r.u32("event header reqid")?,
        })
    }
}

/// The three commands of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventCommand {
    /// Run an event's scripts.
    Run = 1,
    /// The result of an event's last run.
    Status = 2,
    /// Enable or disable a script.
    Script = 3,
}

impl EventCommand {
    /// The command for its wire number, `BadValue` for any other number.
    pub fn from_u32(v: u32) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(EventCommand::Run),
            2 => Ok(EventCommand::Status),
            3 => Ok(EventCommand::Script),
            _ => Err(DecodeError::BadValue {
                what: "event command",
                value: v.into(),
            }),
        }
    }

    /// Samba's name for the command ("RUN", "STATUS", "SCRIPT").
    pub fn label(self) -> &'static str {
        match self {
            EventCommand::Run => "RUN",
            EventCommand::Status => "STATUS",
            EventCommand::Script => "SCRIPT",
        }
    }
}

/// RUN: run `event` of `component` with `args`, all scripts finishing
/// within `timeout` seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// Directory under the events directory ("legacy" for ctdbd).
    pub component: String,
    /// Event name, passed to every script as its first argument.
    pub event: String,
    /// Further arguments, space separated (`None`: none at all).
    pub args: Option<String>,
    /// Seconds the whole run may take.
    pub timeout: u32,
    /// [`RUN_ALL`] or 0.
    pub flags: u32,
}

/// STATUS: the last completed run of `event` in `component`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusRequest {
    /// Directory under the events directory.
    pub component: String,
    /// Event name.
    pub event: String,
}

/// What a SCRIPT request does to the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptAction {
    /// Clear the execute bits.
    Disable = 0,
    /// Set the execute bits.
    Enable = 1,
}

/// SCRIPT: enable or disable `script` (with or without `.script`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRequest {
    /// Directory under the events directory.
    pub component: String,
    /// Script name, e.g. "10.interface".
    pub script: String,
    /// Enable or disable.
    pub action: ScriptAction,
}

/// A request with its command's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRequest {
    /// RUN.
    Run(RunRequest),
    /// STATUS.
    Status(StatusRequest),
    /// SCRIPT.
    Script(ScriptRequest),
}

impl EventRequest {
    /// The request's command.
    pub fn command(&self) -> EventCommand {
        match self {
            EventRequest::Run(_) => EventCommand::Run,
            EventRequest::Status(_) => EventCommand::Status,
            EventRequest::Script(_) => EventCommand::Script,
        }
    }
}

/// One script's part of an event run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptStatus {
    /// Script name without ".script".
    pub name: String,
    /// When the script started.
    pub begin: Timeval,
    /// When it finished (or was given up on).
    pub end: Timeval,
    /// Exit status, or a negative errno (-ENOEXEC: disabled, -ETIMEDOUT...).
    pub result: i32,
    /// What it wrote to stdout and stderr (`None`: nothing).
    pub output: Option<String>,
}

/// A successful STATUS reply's body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusReply {
    /// The run's result: 0, the first failing script's result, or -ETIMEDOUT.
    pub summary: i32,
    /// The scripts that ran (up to the failing one), in order.
    pub scripts: Vec<ScriptStatus>,
}

/// A reply: the request's command, its result and, for a STATUS with result
/// 0, the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventReply {
    /// The command being answered.
    pub command: EventCommand,
    /// 0 or a positive errno (ENOEXEC: a script failed, ETIMEDOUT, ...).
    pub result: i32,
    /// Present exactly when `command` is STATUS and `result` is 0 (encoded
    /// as an empty status if left `None` there; ignored elsewhere).
    pub status: Option<StatusReply>,
}

/// Writes Samba's "stringn".
fn put_string(w: &mut Writer<'_>, s: Option<&str>) {
    w.counted_cstring(s);
}

/// Reads Samba's "stringn": a u32 length then that many bytes; the string
/// ends at the first NUL in them (as Samba copies it); bytes that are not
/// UTF-8 are replaced rather than refused, since script output is not
/// guaranteed to be text.
fn get_string(r: &mut Reader<'_>, what: &'static str) -> Result<Option<String>, DecodeError> {
    let n = r.u32(what)?;
    if n == 0 {
        return Ok(None);
    }
    let n = usize::try_from(n).map_err(|_| DecodeError::BadValue {
        what,
        value: n.into(),
    })?;
    let bytes = r.take(n, what)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(Some(String::from_utf8_lossy(&bytes[..end]).into_owned()))
}

/// A "stringn" that must be present (a component, event or script name).
fn get_name(r: &mut Reader<'_>, what: &'static str) -> Result<String, DecodeError> {
    get_string(r, what)?.ok_or(DecodeError::BadValue { what, value: 0 })
}

impl Layout for RunRequest {
    const NAME: &'static str = "ctdb_event_request_run";
    fn write(&self, w: &mut Writer<'_>) {
        put_string(w, Some(&self.component));
        put_string(w, Some(&self.event));
        put_string(w, self.args.as_deref());
        w.u32(self.timeout).u32(self.flags);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RunRequest {
            component: get_name(r, "run component")?,
            event: get_name(r, "run event")?,
            args: get_string(r, "run args")?,
            timeout: r.u32("run timeout")?,
            flags: r.u32("run flags")?,
        })
    }
}

impl Layout for StatusRequest {
    const NAME: &'static str = "ctdb_event_request_status";
    fn write(&self, w: &mut Writer<'_>) {
        put_string(w, Some(&self.component));
        put_string(w, Some(&self.event));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StatusRequest {
            component: get_name(r, "status component")?,
            event: get_name(r, "status event")?,
        })
    }
}

impl Layout for ScriptRequest {
    const NAME: &'static str = "ctdb_event_request_script";
    fn write(&self, w: &mut Writer<'_>) {
        put_string(w, Some(&self.component));
        put_string(w, Some(&self.script));
        w.u32(self.action as u32);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let component = get_name(r, "script component")?;
        let script = get_name(r, "script name")?;
        let action = match r.u32("script action")? {
            0 => ScriptAction::Disable,
            1 => ScriptAction::Enable,
            v => {
                return Err(DecodeError::BadValue {
                    what: "script action",
                    value: v.into(),
                })
            }
        };
        Ok(ScriptRequest {
            component,
            script,
            action,
        })
    }
}

impl Layout for ScriptStatus {
    const NAME: &'static str = "ctdb_event_script";
    fn write(&self, w: &mut Writer<'_>) {
        put_string(w, Some(&self.name));
        self.begin.write(w);
        self.end.write(w);
        w.i32(self.result);
        put_string(w, self.output.as_deref());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ScriptStatus {
            name: get_name(r, "script status name")?,
            begin: Timeval::read(r)?,
            end: Timeval::read(r)?,
            result: r.i32("script status result")?,
            output: get_string(r, "script status output")?,
        })
    }
}

impl Layout for StatusReply {
    const NAME: &'static str = "ctdb_event_reply_status";
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.summary);
        w.i32(i32::try_from(self.scripts.len()).unwrap_or(i32::MAX));
        for s in &self.scripts {
            s.write(w);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let summary = r.i32("status summary")?;
        let count = r.i32("status script count")?;
        let count = usize::try_from(count).map_err(|_| DecodeError::BadValue {
            what: "status script count",
            value: count as u64,
        })?;
        // Each script takes at least 40 bytes, so a count beyond that is
        // refused before anything is allocated for it.
        if count > r.remaining() / 40 {
            return Err(DecodeError::Truncated {
                what: "status script list",
                needed: count.saturating_mul(40),
                available: r.remaining(),
            });
        }
        let scripts = (0..count)
            .map(|_| ScriptStatus::read(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StatusReply { summary, scripts })
    }
}

impl Layout for EventRequest {
    const NAME: &'static str = "ctdb_event_request";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.command() as u32);
        match self {
            EventRequest::Run(run) => run.write(w),
            EventRequest::Status(status) => status.write(w),
            EventRequest::Script(script) => script.write(w),
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match EventCommand::from_u32(r.u32("event command")?)? {
            EventCommand::Run => EventRequest::Run(RunRequest::read(r)?),
            EventCommand::Status => EventRequest::Status(StatusRequest::read(r)?),
            EventCommand::Script => EventRequest::Script(ScriptRequest::read(r)?),
        })
    }
}

impl Layout for EventReply {
    const NAME: &'static str = "ctdb_event_reply";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.command as u32).i32(self.result);
        if self.result == 0 && self.command == EventCommand::Status {
            // A successful STATUS always carries a body (an empty one when
            // the value has none), so what is encoded decodes.
            match &self.status {
                Some(status) => status.write(w),
                None => StatusReply::default().write(w),
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let command = EventCommand::from_u32(r.u32("event command")?)?;
        let result = r.i32("event result")?;
        let status = if result == 0 && command == EventCommand::Status {
            Some(StatusReply::read(r)?)
        } else {
            None
        };
        Ok(EventReply {
            command,
            result,
            status,
        })
    }
}

/// A whole packet: header (length filled in, version 0) then `body`.
fn encode_packet<T: Layout>(reqid: u32, body: &T) -> Vec<u8> {
    let mut out = vec![0u8; EVENT_HEADER_LEN];
    body.encode(&mut out);
    let header = EventHeader {
        length: u32::try_from(out.len()).unwrap_or(u32::MAX),
        version: 0,
        reqid,
    };
    let mut head = Vec::with_capacity(EVENT_HEADER_LEN);
    header.encode(&mut head);
    out[..EVENT_HEADER_LEN].copy_from_slice(&head);
    out
}

/// Splits a whole packet into its header and body, checking the length
/// field against the bytes given.
fn decode_packet<T: Layout>(bytes: &[u8]) -> Result<(EventHeader, T), DecodeError> {
    let mut r = Reader::new(bytes);
    let header = EventHeader::read(&mut r)?;
    if header.length as usize != bytes.len() {
        return Err(DecodeError::LengthMismatch {
            what: "event header length",
            declared: header.length.into(),
            actual: bytes.len() as u64,
        });
    }
    let body = T::read(&mut r)?;
    r.finish(T::NAME)?;
    Ok((header, body))
}

/// The bytes of a request packet with `reqid`.
pub fn encode_request(reqid: u32, request: &EventRequest) -> Vec<u8> {
    encode_packet(reqid, request)
}

/// A request packet's header and request; errors for a short, long or
/// malformed packet.
pub fn decode_request(bytes: &[u8]) -> Result<(EventHeader, EventRequest), DecodeError> {
    decode_packet(bytes)
}

/// The bytes of a reply packet with `reqid`.
pub fn encode_reply(reqid: u32, reply: &EventReply) -> Vec<u8> {
    encode_packet(reqid, reply)
}

/// A reply packet's header and reply; errors for a short, long or
/// malformed packet.
pub fn decode_reply(bytes: &[u8]) -> Result<(EventHeader, EventReply), DecodeError> {
    decode_packet(bytes)
}

/// The length of the first whole packet at the start of `buf`: `Ok(None)`
/// while fewer bytes than its length field declares have arrived, an error
/// for a length field below the header size or above [`MAX_EVENT_PACKET`]
/// (the stream cannot be resynchronised after that).
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(field) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
    if (len as usize) < EVENT_HEADER_LEN || len > MAX_EVENT_PACKET {
        return Err(DecodeError::BadLength(len));
    }
    let len = len as usize;
    Ok((buf.len() >= len).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_reply() -> EventReply {
        EventReply {
            command: EventCommand::Status,
            result: 0,
            status: Some(StatusReply {
                summary: 3,
                scripts: vec![
                    ScriptStatus {
                        name: "01.ok".into(),
                        begin: Timeval { sec: 5, usec: 6 },
                        end: Timeval { sec: 7, usec: 8 },
                        result: 0,
                        output: None,
                    },
                    ScriptStatus {
                        name: "02.fail".into(),
                        begin: Timeval { sec: 9, usec: 1 },
                        end: Timeval { sec: 9, usec: 2 },
                        result: 3,
                        output: Some("failed\n".into()),
                    },
                ],
            }),
        }
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            EventRequest::Run(RunRequest {
                component: "legacy".into(),
                event: "takeip".into(),
                args: Some("eth0 10.0.0.1 24".into()),
                timeout: 30,
                flags: RUN_ALL,
            }),
            EventRequest::Run(RunRequest {
                component: "legacy".into(),
                event: "monitor".into(),
                args: None,
                timeout: 0,
                flags: 0,
            }),
            EventRequest::Status(StatusRequest {
                component: "legacy".into(),
                event: "monitor".into(),
            }),
            EventRequest::Script(ScriptRequest {
                component: "legacy".into(),
                script: "10.interface".into(),
                action: ScriptAction::Disable,
            }),
        ];
        for (i, req) in requests.iter().enumerate() {
            let bytes = encode_request(i as u32 + 7, req);
            let (h, back) = decode_request(&bytes).unwrap();
            assert_eq!(
                (h.length as usize, h.reqid, h.version),
                (bytes.len(), i as u32 + 7, 0)
            );
            assert_eq!(&back, req);
            assert_eq!(frame_length(&bytes).unwrap(), Some(bytes.len()));
            assert_eq!(frame_length(&bytes[..bytes.len() - 1]).unwrap(), None);
        }
    }

    #[test]
    fn replies_round_trip_and_errors_carry_no_body() {
        let ok = status_reply();
        let bytes = encode_reply(1, &ok);
        assert_eq!(decode_reply(&bytes).unwrap().1, ok);
        let err = EventReply {
            command: EventCommand::Status,
            result: 22,
            status: None,
        };
        let bytes = encode_reply(2, &err);
        assert_eq!(bytes.len(), EVENT_HEADER_LEN + 8);
        assert_eq!(decode_reply(&bytes).unwrap().1, err);
        let bare = EventReply {
            command: EventCommand::Status,
            result: 0,
            status: None,
        };
        let back = decode_reply(&encode_reply(4, &bare)).unwrap().1;
        assert_eq!(back.status, Some(StatusReply::default()));
        let run = EventReply {
            command: EventCommand::Run,
            result: 0,
            status: None,
        };
        assert_eq!(decode_reply(&encode_reply(3, &run)).unwrap().1, run);
    }

    #[test]
    fn every_truncation_and_bad_length_is_an_error() {
        let bytes = encode_reply(1, &status_reply());
        for n in 0..bytes.len() {
            assert!(decode_reply(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_reply(&long).is_err());
        assert!(frame_length(&[3, 0, 0, 0]).is_err());
        assert!(frame_length(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn unknown_command_action_and_huge_count_are_refused() {
        let mut bytes = encode_request(
            1,
            &EventRequest::Status(StatusRequest {
                component: "a".into(),
                event: "b".into(),
            }),
        );
        bytes[12] = 9;
        assert!(matches!(
            decode_request(&bytes),
            Err(DecodeError::BadValue { value: 9, .. })
        ));
        let mut script = encode_request(
            1,
            &EventRequest::Script(ScriptRequest {
                component: "a".into(),
                script: "b".into(),
                action: ScriptAction::Enable,
            }),
        );
        let n = script.len();
        script[n - 4] = 2;
        assert!(decode_request(&script).is_err());
        let mut reply = encode_reply(1, &status_reply());
        reply[24..28].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(decode_reply(&reply).is_err());
        reply[24..28].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(decode_reply(&reply).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def0;
        let base = encode_reply(1, &status_reply());
        for _ in 0..20_000 {
            let mut b = base.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % b.len();
                b[i] = (x >> 32) as u8;
            }
            let _ = decode_reply(&b);
            let _ = decode_request(&b);
            let _ = frame_length(&b);
        }
    }
}
