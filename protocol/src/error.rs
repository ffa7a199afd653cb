//! The one error type of every decoder in this crate.

use std::fmt;

/// Why bytes could not be decoded into a typed value.  Decoders return this
/// instead of panicking, whatever the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended before a field: `needed` more bytes were wanted where
    /// only `available` were left.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A layout was decoded completely but bytes were left after it.
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A string field has no terminating NUL inside its bytes.
    MissingNul {
        /// Which string.
        what: &'static str,
    },
    /// A string field is not valid UTF-8.
    NotUtf8 {
        /// Which string.
        what: &'static str,
    },
    /// A field holds a value its type does not allow.
    BadValue {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A length field disagrees with the sizes of the parts it covers.
    LengthMismatch {
        /// Which length field.
        what: &'static str,
        /// The length the field declares.
        declared: u64,
        /// The length of the parts.
        actual: u64,
    },
    /// The packet does not start with the CTDB magic.
    BadMagic(u32),
    /// The packet carries a protocol version other than 1.
    BadVersion(u32),
    /// The packet length field is below the header size or above the limit.
    BadLength(u32),
    /// The header names an operation this crate does not know.
    UnknownOperation(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what} truncated: needs {needed} bytes, {available} left"
            ),
            DecodeError::TrailingBytes { what, count } => {
                write!(f, "{count} unexpected bytes after {what}")
            }
            DecodeError::MissingNul { what } => write!(f, "{what} is not NUL-terminated"),
            DecodeError::NotUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            DecodeError::BadValue { what, value } => write!(f, "invalid {what} {value}"),
            DecodeError::LengthMismatch {
                what,
                declared,
                actual,
            } => write!(
                f,
                "{what} declares {declared} bytes but its parts take {actual}"
            ),
            DecodeError::BadMagic(m) => write!(f, "non-CTDB packet (magic 0x{m:08x})"),
            DecodeError::BadVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::BadLength(l) => write!(f, "invalid packet length {l}"),
            DecodeError::UnknownOperation(op) => write!(f, "unknown packet operation {op}"),
        }
    }
}

impl std::error::Error for DecodeError {}
