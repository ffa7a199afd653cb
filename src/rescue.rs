//! Salvaging every intact record of a damaged database (tdb_rescue).

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// Calls `f` for every record that looks intact, whatever the state of the chains.
    pub fn rescue(&mut self, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<()> { todo!() }
}
