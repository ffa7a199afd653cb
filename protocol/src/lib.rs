//! The CTDB wire protocol of Samba 4.17 as typed Rust values.
//!
//! - [`wire`]: the byte-level [`Reader`](wire::Reader) and
//!   [`Writer`](wire::Writer) and the [`Layout`] trait (one
//!   encode and one decode per C layout).
//! - [`header`]: the 32-byte packet header.
//! - [`opcode`]: packet operations and every control opcode.
//! - [`packet`]: framing packets out of a stream buffer (no I/O) and the
//!   typed packet bodies.
//! - [`controls`]: typed control request and reply payloads.
//! - [`types`], [`ltdb`], [`statistics`], [`tunables`]: the payload layouts.
//! - [`messages`]: payloads of messages to the well-known srvids.
//! - [`event`]: the event daemon's socket protocol (requests, replies, framing).
//! - [`ids`]: distinct types for database ids, pnns, generations, srvids.
//!
//! Decoding never panics: every error is a [`DecodeError`].  Integers are
//! host order, which is little-endian on every platform CTDB runs on; the
//! layouts are those of x86-64 (8-byte pointers and `time_t`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod controls;
pub mod error;
pub mod event;
pub mod header;
pub mod ids;
pub mod ltdb;
pub mod messages;
pub mod opcode;
pub mod packet;
pub mod statistics;
pub mod tunables;
pub mod types;
pub mod wire;

pub use controls::{ControlReply, ControlRequest};
pub use error::DecodeError;
pub use header::Header;
pub use ids::{DbId, Generation, Pnn, Srvid};
pub use opcode::{ControlOpcode, Operation};
pub use packet::Packet;
pub use wire::Layout;
