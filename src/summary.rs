//! The human-readable statistics text of tdb_summary.

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// The summary text, formatted as Samba's tdb_summary formats it.
    pub fn summary(&mut self) -> Result<String> { todo!() }
}
