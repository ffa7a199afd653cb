//! Reading, writing and growing the database: the mmap (or pread/pwrite with
//! TDB_NOMMAP, or a heap buffer with TDB_INTERNAL), bounds checks that notice
//! growth by other processes, typed field access and file expansion.
//!
//! Every read and write goes through `Tdb::read`/`Tdb::write`, which send it to the
//! open transaction's buffers when there is one and to the file otherwise.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, Record, RECORD_SIZE};
use crate::open::DebugLevel;
use crate::tdb::Tdb;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes from which `file_write_parts` writes through the file descriptor.
const LARGE_WRITE: usize = 64 * 1024;
/// The most buffers one vectored write takes (Linux's IOV_MAX).
const IOV_MAX: usize = 1024;

/// A shared mapping of the database file (from the end of any mutex area on).
pub(crate) struct MappedRegion {
    map: MmapRaw,
}

impl MappedRegion {
    /// Maps `len` bytes of `file` from `offset`, writable unless `read_only`.
    fn new(file: &File, offset: u64, len: usize, read_only: bool) -> std::io::Result<MappedRegion> {
        let mut opts = MmapOptions::new();
        opts.offset(offset).len(len);
        let map = if read_only {
            opts.map_raw_read_only(file)?
        } else {
            opts.map_raw(file)?
        };
        Ok(MappedRegion { map })
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The mapped bytes `[off, off+len)`; the caller has checked the bounds.
    ///
    /// Other processes may change these bytes at any time; callers hold the tdb
    /// lock that covers them, as with Samba's mmap access.
    #[inline]
    pub(crate) fn slice(&self, off: usize, len: usize) -> &[u8] {
        assert!(off + len <= self.map.len());
        // SAFETY: the range lies inside the live mapping (checked above), which
        // stays mapped for the lifetime of &self.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(off), len) }
    }

    /// Copies `data` into the mapping at `off`; the caller has checked the bounds.
    #[inline]
    pub(crate) fn write(&self, off: usize, data: &[u8]) {
        assert!(off + data.len() <= self.map.len());
        // SAFETY: in bounds (checked above); the mapping is writable because writes
        // are refused earlier on read-only databases; source and mapping never overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr().add(off), data.len())
        }
    }

    /// Atomically adds one to the native-order word at `off` (the sequence number).
    pub(crate) fn atomic_increment(&self, off: usize) {
        assert!(off + 4 <= self.map.len() && off.is_multiple_of(4));
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned); the word is
        // only ever accessed as a u32, by this and other processes.
        let word =
            unsafe { &*(self.map.as_mut_ptr().add(off) as *const std::sync::atomic::AtomicU32) };
        word.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Flushes `[off, off+len)` to the file synchronously (msync MS_SYNC).
    pub(crate) fn sync(&self, off: usize, len: usize) -> std::io::Result<()> {
        let len = len.min(self.map.len().saturating_sub(off));
        self.map.flush_range(off, len)
    }
}

/// Where the database bytes live.
pub(crate) enum Storage {
    /// Not mapped: pread/pwrite on the file (TDB_NOMMAP, or mmap failed).
    Unmapped,
    /// A shared mapping of the file.
    Mapped(MappedRegion),
    /// TDB_INTERNAL: the whole database is this buffer.
    Internal(Vec<u8>),
}

impl Tdb {
    /// The file handle; only TDB_INTERNAL databases have none.
    pub(crate) fn file(&self) -> Result<&File> {
        self.file.as_ref().ok_or(TdbError::Io)
    }

    /// Maps the file as it is now (`map_size` bytes), unless TDB_NOMMAP or TDB_INTERNAL.
    pub(crate) fn mmap(&mut self) -> Result<()> {
        if self.flags & crate::flags::INTERNAL != 0 {
            return Ok(());
        }
        self.storage = Storage::Unmapped;
        if self.flags & crate::flags::NOMMAP != 0 || self.map_size == 0 {
            return Ok(());
        }
        let file = self.file()?;
        match MappedRegion::new(
            file,
            self.hdr_ofs as u64,
            self.map_size as usize,
            self.read_only,
        ) {
            Ok(region) => self.storage = Storage::Mapped(region),
            Err(e) => {
                // Samba falls back to pread/pwrite when mmap fails.
                self.log(
                    DebugLevel::Warning,
                    &format!(
                        "tdb_mmap failed for size {} ({})\n",
                        self.map_size,
                        crate::error::strerror(&e)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Drops the mapping (TDB_INTERNAL buffers are kept).
    pub(crate) fn munmap(&mut self) {
        if !matches!(self.storage, Storage::Internal(_)) {
            self.storage = Storage::Unmapped;
        }
    }

    /// The file's size as seen through the mapping (without the mutex area).
    fn file_size(&self) -> Result<u64> {
        let meta = self.file()?.metadata().map_err(|_| TdbError::Io)?;
        Ok(meta.len().saturating_sub(self.hdr_ofs as u64))
    }

    /// `Io`, recorded as the error code and logged (fatal) with `message`.
    fn io_failure<T>(&mut self, message: std::fmt::Arguments<'_>) -> Result<T> {
        self.fail_logged(TdbError::Io, DebugLevel::Fatal, message)
    }

    /// A failed bounds check: [`Self::io_failure`], or a bare `Io` (nothing
    /// recorded or logged) when the caller is only probing.
    fn oob_failure(&mut self, probe: bool, message: std::fmt::Arguments<'_>) -> Result<()> {
        if probe {
            return Err(TdbError::Io);
        }
        self.io_failure(message)
    }

    /// Bounds check against the file, remapping when another process grew it.
    pub(crate) fn file_oob(&mut self, off: Offset, len: u32, probe: bool) -> Result<()> {
        let Some(end) = off.checked_add(len) else {
            return self.oob_failure(probe, format_args!("tdb_oob off {off} len {len} wrap\n"));
        };
        if end <= self.map_size {
            return Ok(());
        }
        if self.flags & crate::flags::INTERNAL != 0 {
            let size = self.map_size;
            return self.oob_failure(
                probe,
                format_args!("tdb_oob len {end} beyond internal malloc size {size}\n"),
            );
        }
        let size = self.file_size().inspect_err(|e| {
            self.ecode = e.code();
        })?;
        if size > u32::MAX as u64 {
            return self.io_failure(format_args!("tdb_oob len {size} too large!\n"));
        }
        // Remap unconditionally: the file may also have shrunk (a CLEAR_IF_FIRST wipe).
        self.munmap();
        self.map_size = size as u32;
        self.mmap()?;
        if size < end as u64 {
            return self.oob_failure(
                probe,
                format_args!("tdb_oob len {end} beyond eof at {size}\n"),
            );
        }
        Ok(())
    }

    /// Bounds check for `[off, off+len)`: inside a transaction against its size,
    /// otherwise against the file (see `file_oob`).
    #[inline]
    pub(crate) fn oob(&mut self, off: Offset, len: u32, probe: bool) -> Result<()> {
        if let Some(end) = off.checked_add(len) {
            if end <= self.map_size {
                return Ok(());
            }
        }
        if self.transaction.is_some() {
            self.ecode = TdbError::Io.code();
            return Err(TdbError::Io);
        }
        self.file_oob(off, len, probe)
    }

    /// Reads from the file (not through a transaction) into `buf`.
    pub(crate) fn file_read(&mut self, off: Offset, buf: &mut [u8]) -> Result<()> {
        self.file_oob(off, buf.len() as u32, false)?;
        match &self.storage {
            Storage::Mapped(m) => buf.copy_from_slice(m.slice(off as usize, buf.len())),
            Storage::Internal(v) => buf.copy_from_slice(&v[off as usize..off as usize + buf.len()]),
            Storage::Unmapped => {
                let pos = off as u64 + self.hdr_ofs as u64;
                if let Err(e) = self.file()?.read_exact_at(buf, pos) {
                    let (len, map_size) = (buf.len(), self.map_size);
                    let why = crate::error::strerror(&e);
                    return self.io_failure(format_args!(
                        "tdb_read failed at {off} len={len} ({why}) map_size={map_size}\n"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Appends `len` bytes of the file at `off` (not through a transaction) to
    /// `out`: copied straight from the mapping when there is one.
    pub(crate) fn file_read_append(
        &mut self,
        off: Offset,
        len: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.file_oob(off, len, false)?;
        if let Storage::Mapped(m) = &self.storage {
            out.extend_from_slice(m.slice(off as usize, len as usize));
            return Ok(());
        }
        let start = out.len();
        out.resize(start + len as usize, 0);
        self.file_read(off, &mut out[start..])
    }

    /// Writes `data` to the file (not through a transaction).
    pub(crate) fn file_write(&mut self, off: Offset, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.read_only || self.traverse_read > 0 {
            self.ecode = TdbError::Rdonly.code();
            return Err(TdbError::Rdonly);
        }
        self.file_oob(off, data.len() as u32, false)?;
        match &mut self.storage {
            Storage::Mapped(m) => m.write(off as usize, data),
            Storage::Internal(v) => {
                v[off as usize..off as usize + data.len()].copy_from_slice(data)
            }
            Storage::Unmapped => {
                let pos = off as u64 + self.hdr_ofs as u64;
                if let Err(e) = self.file()?.write_all_at(data, pos) {
                    return self.write_failed(off, data.len(), e);
                }
            }
        }
        Ok(())
    }

    /// Writes `parts` back to back at `off` (not through a transaction).
    /// Into a mapped file, a large write goes in positioned writes to the
    /// file (the mapping shows the same pages): the kernel fills the pages
    /// instead of each faulting into the mapping first. Small ones go
    /// through `file_write`.
    pub(crate) fn file_write_parts(&mut self, off: Offset, parts: &[&[u8]]) -> Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mapped = matches!(self.storage, Storage::Mapped(_));
        if !mapped || total < LARGE_WRITE {
            let mut at = off;
            for p in parts {
                self.file_write(at, p)?;
                at += p.len() as u32;
            }
            return Ok(());
        }
        if self.read_only || self.traverse_read > 0 {
            self.ecode = TdbError::Rdonly.code();
            return Err(TdbError::Rdonly);
        }
        let Ok(len) = u32::try_from(total) else {
            return self.fail(TdbError::Io);
        };
        self.file_oob(off, len, false)?;
        let pos = off as u64 + self.hdr_ofs as u64;
        let mut slices: Vec<std::io::IoSlice> =
            parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        let mut done = 0u64;
        while !rest.is_empty() {
            let batch = rest.len().min(IOV_MAX);
            match nix::sys::uio::pwritev(self.file()?, &rest[..batch], (pos + done) as libc::off_t)
            {
                Ok(0) => {
                    return self.write_failed(off, total, std::io::ErrorKind::WriteZero.into())
                }
                Ok(n) => {
                    done += n as u64;
                    std::io::IoSlice::advance_slices(&mut rest, n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return self.write_failed(off, total, std::io::Error::from(e)),
            }
        }
        Ok(())
    }

    #[cold]
    fn write_failed(&mut self, off: Offset, len: usize, e: std::io::Error) -> Result<()> {
        let why = crate::error::strerror(&e);
        self.io_failure(format_args!(
            "tdb_write failed at {off} len={len} ({why})\n"
        ))
    }

    /// The mapped bytes `[off, off+len)` when no transaction is open, the file is
    /// mapped and the range lies inside the mapping: the fast path of every read.
    #[inline]
    pub(crate) fn mapped_bytes(&self, off: Offset, len: usize) -> Option<&[u8]> {
        if self.transaction.is_some() {
            return None;
        }
        match &self.storage {
            Storage::Mapped(m)
                if (off as usize)
                    .checked_add(len)
                    .is_some_and(|e| e <= m.len()) =>
            {
                Some(m.slice(off as usize, len))
            }
            _ => None,
        }
    }

    /// The bytes `[off, off+len)` without a copy, from the mapping or (inside a
    /// transaction) as the transaction sees them, when that is possible.
    #[inline]
    pub(crate) fn view(&self, off: Offset, len: usize) -> Option<&[u8]> {
        if self.transaction.is_some() {
            return self.transaction_view(off, len);
        }
        self.mapped_bytes(off, len)
    }

    /// Reads `buf.len()` bytes at `off`, through the transaction if one is open.
    #[inline]
    pub(crate) fn read(&mut self, off: Offset, buf: &mut [u8]) -> Result<()> {
        if self.transaction.is_some() {
            return self.transaction_read(off, buf);
        }
        if let Some(bytes) = self.mapped_bytes(off, buf.len()) {
            buf.copy_from_slice(bytes);
            return Ok(());
        }
        self.file_read(off, buf)
    }

    /// Writes `data` at `off`, into the transaction if one is open.
    #[inline]
    pub(crate) fn write(&mut self, off: Offset, data: &[u8]) -> Result<()> {
        if self.transaction.is_some() {
            return self.transaction_write(off, data);
        }
        self.file_write(off, data)
    }

    /// Reads a stored 32-bit offset or length.
    #[inline]
    pub(crate) fn read_off(&mut self, off: Offset) -> Result<u32> {
        if let Some(bytes) = self.view(off, 4) {
            return Ok(self.order.get(bytes));
        }
        let mut b = [0u8; 4];
        self.read(off, &mut b)?;
        Ok(self.order.get(&b))
    }

    /// Writes a stored 32-bit offset or length.
    #[inline]
    pub(crate) fn write_off(&mut self, off: Offset, value: u32) -> Result<()> {
        let b = self.order.put(value);
        self.write(off, &b)
    }

    /// Reads a record header without checking its magic.
    #[inline]
    pub(crate) fn read_rec_raw(&mut self, off: Offset) -> Result<Record> {
        // Fast path: decode straight from the mapping or the transaction.
        if let Some(bytes) = self.view(off, RECORD_SIZE as usize) {
            return Ok(Record::decode(bytes, self.order));
        }
        self.read_rec_slow(off)
    }

    #[cold]
    #[inline(never)]
    fn read_rec_slow(&mut self, off: Offset) -> Result<Record> {
        let mut b = [0u8; RECORD_SIZE as usize];
        self.read(off, &mut b)?;
        Ok(Record::decode(&b, self.order))
    }

    /// Reads a used (live or dead) record header, failing with Corrupt on any other
    /// magic and when its `next` points outside the file (tdb_rec_read).
    #[inline]
    pub(crate) fn read_rec(&mut self, off: Offset) -> Result<Record> {
        let rec = self.read_rec_raw(off)?;
        if rec.magic != format::MAGIC && rec.magic != format::DEAD_MAGIC {
            return Err(self.bad_magic(rec.magic, off));
        }
        self.oob(rec.next, RECORD_SIZE, false)?;
        Ok(rec)
    }

    #[cold]
    #[inline(never)]
    fn bad_magic(&mut self, magic: u32, off: Offset) -> TdbError {
        self.ecode = TdbError::Corrupt.code();
        self.log(
            DebugLevel::Fatal,
            &format!("tdb_rec_read bad magic 0x{:x} at offset={}\n", magic, off),
        );
        TdbError::Corrupt
    }

    /// Writes a record header.
    #[inline]
    pub(crate) fn write_rec(&mut self, off: Offset, rec: &Record) -> Result<()> {
        let b = rec.encode(self.order);
        self.write(off, &b)
    }

    /// Reads `len` bytes into a new buffer (tdb_alloc_read).
    pub(crate) fn alloc_read(&mut self, off: Offset, len: u32) -> Result<Vec<u8>> {
        // Bounds first: a damaged length must not turn into a huge allocation.
        self.oob(off, len, false)?;
        let mut v = Vec::new();
        if v.try_reserve_exact(len as usize).is_err() {
            self.ecode = TdbError::Oom.code();
            self.log(
                DebugLevel::Error,
                &format!("tdb_alloc_read malloc failed len={}\n", len),
            );
            return Err(TdbError::Oom);
        }
        v.resize(len as usize, 0);
        self.read(off, &mut v)?;
        Ok(v)
    }

    /// `alloc_read` into `buf` (its old contents replaced), reusing its memory.
    pub(crate) fn read_reusing(&mut self, off: Offset, len: u32, buf: &mut Vec<u8>) -> Result<()> {
        self.oob(off, len, false)?;
        buf.clear();
        if let Some(bytes) = self.view(off, len as usize) {
            buf.extend_from_slice(bytes);
            return Ok(());
        }
        if buf.try_reserve_exact(len as usize).is_err() {
            self.ecode = TdbError::Oom.code();
            return Err(TdbError::Oom);
        }
        buf.resize(len as usize, 0);
        self.read(off, buf)
    }

    /// Calls `f` with the bytes `[off, off+len)`: in place when the file is mapped
    /// and no transaction is open, otherwise from a copy (tdb_parse_data).
    pub(crate) fn with_bytes<R>(
        &mut self,
        off: Offset,
        len: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        if self.transaction.is_none() {
            self.oob(off, len, false)?;
            if let Some(bytes) = self.mapped_bytes(off, len as usize) {
                return Ok(f(bytes));
            }
            if let Storage::Internal(v) = &self.storage {
                return Ok(f(&v[off as usize..(off + len) as usize]));
            }
        } else if let Some(bytes) = self.transaction_view(off, len as usize) {
            return Ok(f(bytes));
        }
        let data = self.alloc_read(off, len)?;
        Ok(f(&data))
    }

    /// Grows the file by `addition` bytes at `size` (not through a transaction):
    /// preallocated when the filesystem can, otherwise written with padding, so that
    /// the space really exists; on failure the file is cut back to `size`.
    pub(crate) fn file_expand(&mut self, size: Offset, addition: u32) -> Result<()> {
        if self.read_only || self.traverse_read > 0 {
            self.ecode = TdbError::Rdonly.code();
            return Err(TdbError::Rdonly);
        }
        let Some(new_size) = size.checked_add(addition) else {
            return self.fail_logged(
                TdbError::Oom,
                DebugLevel::Error,
                format_args!(
                    "expand_file write overflow detected current size[{size}] addition[{addition}]!\n"
                ),
            );
        };
        let hdr = self.hdr_ofs as u64;
        // posix_fallocate leaves the range zero-filled.
        let rc = loop {
            let start = (size as u64 + hdr) as libc::off_t;
            match nix::fcntl::posix_fallocate(self.file()?, start, addition as libc::off_t) {
                Ok(()) => break 0,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => break errno as i32,
            }
        };
        if rc == 0 {
            return Ok(());
        }
        if rc != libc::ENOSPC {
            let file = self.file()?;
            let padded = file.set_len(new_size as u64 + hdr).and_then(|_| {
                let buf = [format::PAD_BYTE; 8192];
                let mut pos = size as u64;
                let end = new_size as u64;
                while pos < end {
                    let n = ((end - pos) as usize).min(buf.len());
                    file.write_all_at(&buf[..n], pos + hdr)?;
                    pos += n as u64;
                }
                Ok(())
            });
            if padded.is_ok() {
                return Ok(());
            }
        }
        let _ = self.file()?.set_len(size as u64 + hdr);
        self.ecode = TdbError::Oom.code();
        self.log(
            DebugLevel::Error,
            &format!(
                "expand_file to {} failed ({})\n",
                new_size,
                std::io::Error::from_raw_os_error(if rc == 0 { libc::ENOSPC } else { rc })
            ),
        );
        Err(TdbError::Oom)
    }

    /// Grows the database by `addition` bytes at `size`: into the transaction's
    /// buffers when one is open, otherwise on disk.
    pub(crate) fn expand_file(&mut self, size: Offset, addition: u32) -> Result<()> {
        if self.transaction.is_some() {
            return self.transaction_expand_file(size, addition);
        }
        self.file_expand(size, addition)
    }

    /// Makes room for at least `size` more bytes of records, adding the new space to
    /// the freelist (tdb_expand). Takes the freelist lock.
    pub(crate) fn expand(&mut self, size: u32) -> Result<()> {
        let mut freelist = self.hold_list_quietly(-1, crate::lock::LockKind::Write, true)?;
        freelist.expand_locked(size)
    }

    fn expand_locked(&mut self, size: u32) -> Result<()> {
        // Learn about growth by other processes first.
        let map_size = self.map_size;
        let _ = self.oob(map_size, 1, true);
        if self.transaction.is_none() && self.flags & crate::flags::INTERNAL == 0 {
            self.reclaim_dead_tail();
        }
        let size = expand_adjust(self.map_size, size, self.page_size);
        let current = self.map_size;
        let Some(new_size) = current.checked_add(size) else {
            return self.fail_logged(
                TdbError::Oom,
                DebugLevel::Error,
                format_args!(
                    "tdb_expand overflow detected current map_size[{current}] size[{size}]!\n"
                ),
            );
        };
        let offset = self.map_size;
        let rec = Record {
            rec_len: size - RECORD_SIZE,
            ..Record::default()
        };
        if self.flags & crate::flags::INTERNAL != 0 {
            if let Storage::Internal(v) = &mut self.storage {
                if v.try_reserve(size as usize).is_err() {
                    self.ecode = TdbError::Oom.code();
                    return Err(TdbError::Oom);
                }
                v.resize(new_size as usize, 0);
            }
            self.map_size = new_size;
        } else {
            self.expand_file(self.map_size, size)?;
            // Remap explicitly: inside a transaction nothing else would.
            self.munmap();
            self.map_size = new_size;
            self.mmap()?;
        }
        self.free_record(offset, rec)
    }

    /// Makes space that no record accounts for into free records, before growing
    /// behind it (check's dead-space rule, which runs to the end of the file,
    /// would no longer cover it): dead space at the end of the file and recovery
    /// areas nothing points at. A crash while a commit grew the file, before its
    /// recovery data counted, leaves them (Samba's commit also in mid-file).
    fn reclaim_dead_tail(&mut self) {
        let Some(space) = self.unaccounted_space() else {
            return;
        };
        if let Some(dead) = space.dead_from {
            // A header pointing into the dead space points at an area never
            // made valid: forget it first (a crash then leaves plain dead space).
            let area = self.read_off(format::RECOVERY_HEAD_OFS).unwrap_or(0);
            if area >= dead && self.write_off(format::RECOVERY_HEAD_OFS, 0).is_err() {
                return;
            }
        }
        let spans = space.orphans.iter().copied().chain(
            space
                .dead_from
                .map(|d| (d, self.map_size - d))
                .filter(|&(_, len)| {
                    len >= RECORD_SIZE + format::OFF_SIZE && len.is_multiple_of(format::ALIGNMENT)
                }),
        );
        for (off, len) in spans.collect::<Vec<_>>() {
            self.log(
                DebugLevel::Warning,
                &format!(
                    "tdb_expand: unaccounted space at {}-{} made free\n",
                    off,
                    off + len
                ),
            );
            let rec = Record {
                rec_len: len - RECORD_SIZE,
                ..Record::default()
            };
            if self.free_record(off, rec).is_err() {
                return;
            }
        }
    }

    /// At open: the same, when the cheap look says there may be such space and
    /// the freelist lock is free (an open never waits for it).
    pub(crate) fn reclaim_dead_tail_at_open(&mut self) {
        if self.flags & crate::flags::INTERNAL != 0 || self.unaccounted_space().is_none() {
            return;
        }
        if let Ok(mut freelist) = self.hold_list_quietly(-1, crate::lock::LockKind::Write, false) {
            let map_size = freelist.map_size;
            let _ = freelist.oob(map_size, 1, true);
            freelist.reclaim_dead_tail();
        }
    }

    /// Whether a record (or the hash table) ends just before `off`: its tailer
    /// there names a used, dead or free record of that length.
    fn record_ends_at(&mut self, off: Offset) -> bool {
        let start = format::data_start(self.hash_size);
        if off == start {
            return true;
        }
        if off < start {
            return false;
        }
        let Some(tailer) = off
            .checked_sub(format::OFF_SIZE)
            .and_then(|t| self.read_off(t).ok())
        else {
            return false;
        };
        if tailer < RECORD_SIZE + format::OFF_SIZE || tailer > off - start {
            return false;
        }
        match self.read_rec_raw(off - tailer) {
            Ok(rec) => {
                matches!(
                    rec.magic,
                    format::MAGIC | format::DEAD_MAGIC | format::FREE_MAGIC
                ) && rec.rec_len as u64 + RECORD_SIZE as u64 == tailer as u64
            }
            Err(_) => false,
        }
    }

    /// Space no record accounts for, if any: a cheap look at the end of the file
    /// first (the recovery area or a record must end there, behind a record), a
    /// walk over the records only when that fails. The walk steps over recovery
    /// areas nothing points at (listing them), and stops at zero or padding
    /// bytes where a record should start (dead space to the end of the file, as
    /// check counts it) and at anything it cannot step over (nothing to do).
    fn unaccounted_space(&mut self) -> Option<UnaccountedSpace> {
        let end = self.map_size;
        let start = format::data_start(self.hash_size);
        if end <= start {
            return None;
        }
        let area = self.read_off(format::RECOVERY_HEAD_OFS).ok()?;
        // A record (or the hash table) must end where the area starts: a commit
        // killed after it placed the area past a zero gap leaves that gap, and
        // a store by another library may since have grown the file behind it.
        let area_follows_record = area == 0 || self.record_ends_at(area);
        // And a record must start behind the hash table: zeros there are what the
        // first commit, killed, leaves (its area pointed at or, after Samba's
        // recovery, dropped), with records another library stored behind them.
        let first = self.read_rec_raw(start).ok()?;
        let first_is_record = area == start
            || matches!(
                first.magic,
                format::MAGIC | format::DEAD_MAGIC | format::FREE_MAGIC
            );
        let looks_accounted = area_follows_record && first_is_record;
        if area != 0 && looks_accounted {
            let rec = self.read_rec_raw(area).ok()?;
            if area as u64 + RECORD_SIZE as u64 + rec.rec_len as u64 == end as u64 {
                return None;
            }
        }
        if looks_accounted && self.record_ends_at(end) {
            return None;
        }
        let mut space = UnaccountedSpace::default();
        let mut off = start;
        while off < end {
            let rec = self.read_rec_raw(off).ok()?;
            let step = off
                .checked_add(RECORD_SIZE)?
                .checked_add(rec.rec_len)
                .filter(|&e| e <= end && rec.rec_len.is_multiple_of(format::ALIGNMENT));
            match rec.magic {
                format::MAGIC | format::DEAD_MAGIC | format::FREE_MAGIC => {}
                _ if off == area && step.is_some() && rec.rec_len >= format::OFF_SIZE => {}
                format::RECOVERY_INVALID_MAGIC | format::PAD_U32 | format::RECOVERY_MAGIC
                    if step.is_some() && rec.rec_len >= format::OFF_SIZE =>
                {
                    space.orphans.push((off, RECORD_SIZE + rec.rec_len));
                }
                _ => {
                    let mut first = [0u8; 1];
                    self.read(off, &mut first).ok()?;
                    if first[0] != 0 && first[0] != format::PAD_BYTE {
                        return None;
                    }
                    // Space no list leads into ends at the first record one
                    // does (a commit killed after it grew the file left it:
                    // zeros, what it wrote of its blocks, its area); with none
                    // behind it, it is dead space to the end of the file.
                    if let Some(next) = self.first_referenced_from(off)? {
                        let len = next - off;
                        let header = self.read_rec_raw(next).ok()?;
                        let is_record = next == area
                            || matches!(
                                header.magic,
                                format::MAGIC | format::DEAD_MAGIC | format::FREE_MAGIC
                            );
                        if !is_record
                            || len < RECORD_SIZE + format::OFF_SIZE
                            || !len.is_multiple_of(format::ALIGNMENT)
                        {
                            return None;
                        }
                        space.orphans.push((off, len));
                        off = next;
                        continue;
                    }
                    space.dead_from = Some(off);
                    break;
                }
            }
            off = step?;
        }
        (space.dead_from.is_some() || !space.orphans.is_empty()).then_some(space)
    }

    /// The lowest offset at or past `from` that the freelist, a hash chain or
    /// the recovery pointer (to an area that has a length: one aimed into zeros
    /// is what a killed commit leaves, and is cleared) leads to: Some(None) when
    /// none does, None when a list cannot be followed to its end (a loop, an
    /// unreadable link).
    fn first_referenced_from(&mut self, from: Offset) -> Option<Option<Offset>> {
        let mut lowest: Option<Offset> = None;
        let mut note = |o: Offset| {
            if o >= from && lowest.is_none_or(|l| o < l) {
                lowest = Some(o);
            }
        };
        let area = self.read_off(format::RECOVERY_HEAD_OFS).ok()?;
        if area != 0 && self.read_rec_raw(area).ok()?.rec_len != 0 {
            note(area);
        }
        let mut budget = self.map_size / RECORD_SIZE + 1;
        let tops = std::iter::once(format::FREELIST_TOP)
            .chain((0..self.hash_size).map(format::hash_top))
            .collect::<Vec<_>>();
        for top in tops {
            let mut next = self.read_off(top).ok()?;
            while next != 0 {
                budget = budget.checked_sub(1)?;
                note(next);
                next = self.read_off(next).ok()?;
            }
        }
        Some(lowest)
    }

    /// Flushes the file to disk (fdatasync, and msync of the mapped range), unless TDB_NOSYNC.
    pub(crate) fn sync_range(&mut self, off: Offset, len: u32) -> Result<()> {
        if self.flags & crate::flags::NOSYNC != 0 {
            return Ok(());
        }
        let ok = match self.file.as_ref() {
            Some(f) => f.sync_data().is_ok(),
            None => true,
        };
        if !ok {
            self.ecode = TdbError::Io.code();
            return Err(TdbError::Io);
        }
        if let Storage::Mapped(m) = &self.storage {
            let page = self.page_size as usize;
            let start = (off as usize) & !(page - 1);
            if let Err(e) = m.sync(start, len as usize + (off as usize - start)) {
                let why = crate::error::strerror(&e);
                return self.io_failure(format_args!("tdb_transaction: msync failed - {why}\n"));
            }
        }
        Ok(())
    }
}

/// Space found by `Tdb::unaccounted_space`.
#[derive(Default)]
struct UnaccountedSpace {
    /// Recovery areas nothing points at: (offset, whole length).
    orphans: Vec<(Offset, u32)>,
    /// Where dead space running to the end of the file starts.
    dead_from: Option<Offset>,
}

/// How much to grow a database of `map_size` bytes that needs `size` more:
/// room for many such records and at least 25% (10% above 100 MiB), page-rounded.
pub(crate) fn expand_adjust(map_size: u32, size: u32, page_size: u32) -> u32 {
    let max_size = u32::MAX - map_size;
    if size > max_size {
        return size;
    }
    let increment = if size > 100 * 1024 {
        size.checked_mul(2)
    } else {
        size.checked_mul(100)
    };
    let top_size = match increment.and_then(|inc| map_size.checked_add(inc)) {
        Some(t) => t,
        None => return max_size,
    };
    let grown = if map_size > 100 * 1024 * 1024 {
        (map_size as f64 * 1.10) as u64
    } else {
        (map_size as f64 * 1.25) as u64
    };
    if grown > u32::MAX as u64 {
        return max_size;
    }
    let new_size = top_size.max(grown as u32);
    match new_size.checked_add(page_size) {
        Some(_) => format::align(new_size, page_size) - map_size,
        None => max_size,
    }
}
