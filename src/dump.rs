//! Debug dumps to standard output: tdb_dump_all and tdb_printfreelist.

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// Prints every chain and record to stdout, as tdb_dump_all.
    pub fn dump_all(&mut self) { todo!() }
    /// Prints the freelist to stdout, as tdb_printfreelist.
    pub fn print_freelist(&mut self) -> Result<()> { todo!() }
}
