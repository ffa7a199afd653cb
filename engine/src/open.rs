//! Opening, closing and reopening a database: header creation and validation,
//! CLEAR_IF_FIRST, hash detection, endianness, and logging.

use crate::error::{OpenError, Result, TdbError};
use crate::flags;
use crate::format::{
    ByteOrder, Header, DEFAULT_HASH_SIZE, FEATURE_FLAG_MAGIC, FEATURE_FLAG_MUTEX, FREELIST_TOP,
    HASH_RWLOCK_MAGIC, HEADER_SIZE, MAGIC_FOOD, OFF_SIZE, SUPPORTED_FEATURE_FLAGS, VERSION,
};
use crate::guard::{Held, Release};
use crate::hash::HashFunction;
use crate::io::Storage;
use crate::lock::{AllRecordLock, LockFlags, LockKind, ACTIVE_LOCK, OPEN_LOCK};
use crate::tdb::Tdb;
use crate::traverse::TraverseLock;
use std::any::Any;
use std::ffi::CStr;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::sync::{Arc, Mutex};

/// Severity of a log message, the values of C `enum tdb_debug_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum DebugLevel {
    /// TDB_DEBUG_FATAL
    Fatal = 0,
    /// TDB_DEBUG_ERROR
    Error = 1,
    /// TDB_DEBUG_WARNING
    Warning = 2,
    /// TDB_DEBUG_TRACE
    Trace = 3,
}

/// Receives the engine's log messages (each message ends with a newline, as Samba's do).
pub trait Logger: Send + Sync {
    /// Called with the database the message is about.
    fn log(&self, tdb: &Tdb, level: DebugLevel, message: &str);
    /// Lets the C layer recover its own logging context.
    fn as_any(&self) -> &dyn Any;
}

/// Everything tdb_open_ex takes besides the name.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Number of hash chains for a new file; 0 means the default of 131.
    pub hash_size: i32,
    /// TDB_* flags (see `crate::flags`).
    pub tdb_flags: u32,
    /// open(2) flags: O_RDONLY, O_RDWR, O_CREAT, O_TRUNC...
    pub open_flags: i32,
    /// Mode for a created file.
    pub mode: u32,
    /// Where log messages go; none means they are dropped.
    pub logger: Option<Arc<dyn Logger>>,
    /// The hash function; none means the default detection Samba does.
    pub hash: Option<HashFunction>,
}

/// (device, inode) of every file open in this process: a second open of the same
/// file would lose the first one's fcntl locks when it closes, so it is refused.
static OPEN_FILES: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn open_error(errno: i32) -> OpenError {
    OpenError { errno }
}

impl Tdb {
    /// Opens (or creates) a database as tdb_open_ex does; the Box's address is
    /// stable and is what the logger sees as the database from the first message on.
    /// A TDB_INTERNAL database needs no name; any other is refused without one.
    pub fn open(
        name: Option<&CStr>,
        options: OpenOptions,
    ) -> std::result::Result<Box<Tdb>, OpenError> {
        let mut tdb_flags = options.tdb_flags;
        if tdb_flags & (flags::INTERNAL | flags::MUTEX_LOCKING) != 0 {
            tdb_flags |= flags::INCOMPATIBLE_HASH;
        }
        let user_hash = options.hash.is_some();
        let hash = options
            .hash
            .clone()
            .unwrap_or(if tdb_flags & flags::INCOMPATIBLE_HASH != 0 {
                HashFunction::Jenkins
            } else {
                HashFunction::Old
            });
        let page_size = match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
            Ok(Some(n)) if n > 0 && n <= 1 << 30 => n as u32,
            _ => 0x2000,
        };
        let internal = tdb_flags & flags::INTERNAL != 0;
        let given_name = name;
        let name = match name {
            Some(n) => n,
            None if internal => c"__TDB_INTERNAL__",
            None => c"__NULL__",
        };
        let mut tdb = Box::new(Tdb {
            name: name.to_owned(),
            file: None,
            storage: Storage::Unmapped,
            map_size: 0,
            hdr_ofs: 0,
            read_only: false,
            traverse_read: 0,
            traverse_write: 0,
            allrecord: AllRecordLock::default(),
            lockrecs: Vec::new(),
            mutexes: None,
            ecode: 0,
            hash_size: 0,
            feature_flags: 0,
            flags: tdb_flags,
            travlocks: vec![TraverseLock {
                off: 0,
                list: 0,
                kind: LockKind::Read,
                steps: 0,
            }],
            device: 0,
            inode: 0,
            logger: options.logger.clone(),
            hash,
            open_flags: options.open_flags,
            transaction: None,
            transaction_starting: false,
            page_size,
            max_dead: if tdb_flags & flags::VOLATILE != 0 {
                5
            } else {
                0
            },
            interrupt: None,
            order: ByteOrder::Native,
            scratch: Vec::new(),
        });
        if given_name.is_none() && !internal {
            tdb.log(DebugLevel::Fatal, "tdb_open_ex: called with name == NULL\n");
            return Err(open_error(libc::EINVAL));
        }
        match tdb.open_inner(&options, tdb_flags, user_hash) {
            Ok(()) => Ok(tdb),
            Err(e) => {
                tdb.storage = Storage::Unmapped;
                tdb.mutexes = None;
                Err(e)
            }
        }
    }

    fn open_inner(
        &mut self,
        options: &OpenOptions,
        tdb_flags: u32,
        user_hash: bool,
    ) -> std::result::Result<(), OpenError> {
        let name = self.name.to_string_lossy().into_owned();
        let accmode = options.open_flags & libc::O_ACCMODE;
        if accmode == libc::O_WRONLY {
            self.log(
                DebugLevel::Error,
                &format!("tdb_open_ex: can't open tdb {} write-only\n", name),
            );
            return Err(open_error(libc::EINVAL));
        }
        if options.hash_size < 0 {
            self.log(
                DebugLevel::Error,
                &format!("tdb_open_ex: invalid hash size {}\n", options.hash_size),
            );
            return Err(open_error(libc::EINVAL));
        }
        let hash_size = if options.hash_size == 0 {
            DEFAULT_HASH_SIZE
        } else {
            options.hash_size as u32
        };
        if accmode == libc::O_RDONLY {
            self.read_only = true;
            self.flags |= flags::NOLOCK;
            self.flags &= !(flags::CLEAR_IF_FIRST | flags::MUTEX_LOCKING);
        }
        if self.flags & flags::ALLOW_NESTING != 0 && self.flags & flags::DISALLOW_NESTING != 0 {
            self.ecode = TdbError::Nesting.code();
            self.log(
                DebugLevel::Fatal,
                "tdb_open_ex: allow_nesting and disallow_nesting are not allowed together!",
            );
            return Err(open_error(libc::EINVAL));
        }
        if self.flags & flags::MUTEX_LOCKING != 0 {
            let why = if self.flags & flags::INTERNAL != 0 {
                Some((
                    libc::EINVAL,
                    "TDB_MUTEX_LOCKING and TDB_INTERNAL are not allowed together",
                ))
            } else if self.flags & flags::NOMMAP != 0 {
                Some((
                    libc::EINVAL,
                    "TDB_MUTEX_LOCKING and TDB_NOMMAP are not allowed together",
                ))
            } else if !crate::mutex::runtime_check_for_robust_mutexes() {
                Some((
                    libc::ENOSYS,
                    "TDB_MUTEX_LOCKING requires support for robust_mutexes",
                ))
            } else {
                None
            };
            if let Some((errno, what)) = why {
                self.log(
                    DebugLevel::Error,
                    &format!("tdb_open_ex: invalid flags for {} - {}\n", name, what),
                );
                return Err(open_error(errno));
            }
        }
        if std::env::var_os("TDB_NO_FSYNC").is_some() {
            self.flags |= flags::NOSYNC;
        }
        if self.flags & flags::DISALLOW_NESTING == 0 {
            self.flags |= flags::ALLOW_NESTING;
        }
        if self.flags & flags::INTERNAL != 0 {
            self.flags |= flags::NOLOCK | flags::NOMMAP;
            self.flags &= !flags::CLEAR_IF_FIRST;
            if self.new_database(hash_size).is_err() {
                self.log(DebugLevel::Error, "tdb_open_ex: tdb_new_database failed!");
                return Err(open_error(libc::ENOMEM));
            }
            return Ok(());
        }
        let fd = match open_file(&self.name, options.open_flags, options.mode) {
            Ok(file) => file,
            Err(err) => {
                self.log(
                    DebugLevel::Warning,
                    &format!(
                        "tdb_open_ex: could not open file {}: {}\n",
                        name,
                        crate::error::strerror(&err)
                    ),
                );
                return Err(open_error(err.raw_os_error().unwrap_or(libc::EIO)));
            }
        };
        self.file = Some(fd);
        if self
            .nest_lock(OPEN_LOCK, LockKind::Write, LockFlags::WAIT)
            .is_err()
        {
            let err = std::io::Error::last_os_error();
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_open_ex: failed to get open lock on {}: {}\n",
                    name,
                    crate::error::strerror(&err)
                ),
            );
            return Err(open_error(err.raw_os_error().unwrap_or(libc::EIO)));
        }
        let mut open_lock = Held::adopt(
            self,
            Release::Nested {
                off: OPEN_LOCK,
                kind: LockKind::Write,
            },
        );
        open_lock.open_under_lock(options, tdb_flags, user_hash, hash_size, &name)?;
        if open_lock.unlock().is_err() {
            return Err(open_error(libc::EIO));
        }
        OPEN_FILES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.device, self.inode));
        Ok(())
    }

    /// The part of open that runs under the open lock (whose guard the caller
    /// holds): CLEAR_IF_FIRST wipe, header, mutex area, hash table bounds,
    /// active lock and crash recovery.
    fn open_under_lock(
        &mut self,
        options: &OpenOptions,
        tdb_flags: u32,
        user_hash: bool,
        hash_size: u32,
        name: &str,
    ) -> std::result::Result<(), OpenError> {
        let mut locked = false;
        if tdb_flags & flags::CLEAR_IF_FIRST != 0 && !self.read_only {
            locked = self
                .nest_lock(ACTIVE_LOCK, LockKind::Write, LockFlags::NOWAIT_PROBE)
                .is_ok();
            if locked {
                // We are the only user: start from an empty database.
                if self
                    .brlock(LockKind::Write, FREELIST_TOP, 0, LockFlags::WAIT)
                    .is_err()
                {
                    let err = std::io::Error::last_os_error();
                    self.log(
                        DebugLevel::Fatal,
                        &format!(
                            "tdb_open_ex: tdb_brlock failed for {}: {}\n",
                            name,
                            crate::error::strerror(&err)
                        ),
                    );
                    return Err(open_error(err.raw_os_error().unwrap_or(libc::EIO)));
                }
                let mut wiping = Held::adopt(
                    self,
                    Release::Range {
                        kind: LockKind::Write,
                        off: FREELIST_TOP,
                        len: 0,
                    },
                );
                if let Err(errno) = wiping.new_database(hash_size) {
                    wiping.log(
                        DebugLevel::Fatal,
                        &format!(
                            "tdb_open_ex: tdb_new_database failed for {}: {}\n",
                            name,
                            std::io::Error::from_raw_os_error(errno)
                        ),
                    );
                    return Err(open_error(errno));
                }
            }
        }
        let mut raw = [0u8; HEADER_SIZE as usize];
        let got = self
            .file
            .as_ref()
            .map(|f| read_up_to(f, &mut raw, 0))
            .unwrap_or(0);
        let mut header = Header::decode(&raw, ByteOrder::Native);
        let rev;
        if got != raw.len() || !header.has_magic_food() {
            if options.open_flags & libc::O_CREAT == 0 {
                return Err(open_error(libc::EIO));
            }
            if let Err(errno) = self.new_database(hash_size) {
                return Err(open_error(if errno == 0 { libc::EIO } else { errno }));
            }
            rev = self.flags & flags::CONVERT != 0;
            let order = if rev {
                ByteOrder::Swapped
            } else {
                ByteOrder::Native
            };
            let got = self
                .file
                .as_ref()
                .map(|f| read_up_to(f, &mut raw, 0))
                .unwrap_or(0);
            if got != raw.len() {
                return Err(open_error(libc::EIO));
            }
            header = Header::decode(&raw, order);
        } else if header.version != VERSION {
            rev = header.version == VERSION.swap_bytes();
            if !rev {
                return Err(open_error(libc::EIO));
            }
            header = Header::decode(&raw, ByteOrder::Swapped);
        } else {
            rev = false;
        }
        let stored_version = &raw[32..36];
        if u32::from_be_bytes([
            stored_version[0],
            stored_version[1],
            stored_version[2],
            stored_version[3],
        ]) == VERSION
        {
            self.flags |= flags::BIGENDIAN;
        }
        if rev {
            self.flags |= flags::CONVERT;
            self.order = ByteOrder::Swapped;
        } else {
            self.flags &= !flags::CONVERT;
            self.order = ByteOrder::Native;
        }
        let meta = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .ok_or(open_error(libc::EIO))?;
        self.device = meta.dev();
        self.inode = meta.ino();
        if header.rwlocks != 0
            && header.rwlocks != FEATURE_FLAG_MAGIC
            && header.rwlocks != HASH_RWLOCK_MAGIC
        {
            self.log(
                DebugLevel::Error,
                "tdb_open_ex: spinlocks no longer supported\n",
            );
            return Err(open_error(libc::ENOSYS));
        }
        if header.hash_size == 0 {
            self.log(
                DebugLevel::Error,
                "tdb_open_ex: invalid database: 0 hash_size\n",
            );
            return Err(open_error(libc::ENOSYS));
        }
        self.hash_size = header.hash_size;
        if header.rwlocks == FEATURE_FLAG_MAGIC {
            self.feature_flags = header.feature_flags;
        }
        if self.feature_flags & !SUPPORTED_FEATURE_FLAGS != 0 {
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_open_ex: unsupported features in tdb {}: 0x{:08x} (supported: 0x{:08x})\n",
                    name, self.feature_flags, SUPPORTED_FEATURE_FLAGS
                ),
            );
            return Err(open_error(libc::ENOSYS));
        }
        if self.feature_flags & FEATURE_FLAG_MUTEX != 0 {
            if !self.mutex_open_ok(&header) {
                return Err(open_error(libc::EINVAL));
            }
            self.hdr_ofs = header.mutex_size;
            if tdb_flags & flags::CLEAR_IF_FIRST == 0 && !self.read_only {
                locked = self
                    .nest_lock(ACTIVE_LOCK, LockKind::Write, LockFlags::NOWAIT_PROBE)
                    .is_ok();
                if locked {
                    if let Err(e) = self.mutex_init() {
                        self.log(
                            DebugLevel::Fatal,
                            &format!(
                                "tdb_open_ex: tdb_mutex_init failed for {}: {}\n",
                                name,
                                crate::error::strerror(&e)
                            ),
                        );
                        return Err(open_error(e.raw_os_error().unwrap_or(libc::EIO)));
                    }
                }
            }
        }
        if header.magic1_hash == 0 && header.magic2_hash == 0 {
            self.hash = HashFunction::Old;
        } else if !self.check_header_hash(&header, !user_hash) {
            let (m1, m2) = self.header_hash();
            let alg = if user_hash {
                "the user defined"
            } else {
                "either default"
            };
            self.log(
                DebugLevel::Fatal,
                &format!(
                    "tdb_open_ex: {} was not created with {} hash function we are using\nmagic1_hash[0x{:08X} {} 0x{:08X}] magic2_hash[0x{:08X} {} 0x{:08X}]\n",
                    name,
                    alg,
                    header.magic1_hash,
                    if header.magic1_hash == m1 { "==" } else { "!=" },
                    m1,
                    header.magic2_hash,
                    if header.magic2_hash == m2 { "==" } else { "!=" },
                    m2
                ),
            );
            return Err(open_error(libc::EINVAL));
        }
        {
            let open_files = OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner());
            if open_files.contains(&(self.device, self.inode)) {
                drop(open_files);
                self.log(
                    DebugLevel::Error,
                    &format!(
                        "tdb_open_ex: {} ({},{}) is already open in this process\n",
                        name, self.device as i32, self.inode as i32
                    ),
                );
                return Err(open_error(libc::EBUSY));
            }
        }
        self.map_size = 0;
        if self.file_oob(0, 1, false).is_err() {
            return Err(open_error(libc::EIO));
        }
        if self.feature_flags & FEATURE_FLAG_MUTEX != 0 && self.flags & flags::NOLOCK == 0 {
            if let Err(e) = self.mutex_mmap() {
                return Err(open_error(e.raw_os_error().unwrap_or(libc::EIO)));
            }
        }
        if self.hash_size > u32::MAX / 4 {
            self.log(
                DebugLevel::Fatal,
                &format!("tdb_open_ex: hash size {} too large\n", self.hash_size),
            );
            return Err(open_error(libc::EINVAL));
        }
        let table = 4 * self.hash_size;
        if self.file_oob(FREELIST_TOP, table, true).is_err() {
            self.log(
                DebugLevel::Fatal,
                &format!("tdb_open_ex: hash size {} does not fit\n", self.hash_size),
            );
            return Err(open_error(libc::EINVAL));
        }
        if locked
            && self
                .nest_unlock(ACTIVE_LOCK, LockKind::Write, false)
                .is_err()
        {
            let err = std::io::Error::last_os_error();
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_open_ex: failed to release ACTIVE_LOCK on {}: {}\n",
                    name,
                    crate::error::strerror(&err)
                ),
            );
            return Err(open_error(err.raw_os_error().unwrap_or(libc::EIO)));
        }
        if (locked || tdb_flags & flags::CLEAR_IF_FIRST != 0)
            && self
                .nest_lock(ACTIVE_LOCK, LockKind::Read, LockFlags::WAIT)
                .is_err()
        {
            let err = std::io::Error::last_os_error();
            return Err(open_error(err.raw_os_error().unwrap_or(libc::EIO)));
        }
        if self.transaction_recover().is_err() {
            return Err(open_error(libc::EIO));
        }
        if !self.read_only && tdb_flags & flags::NOLOCK == 0 {
            self.reclaim_dead_tail_at_open();
        }
        Ok(())
    }

    /// (magic1, magic2): the hashes a header made with our hash function carries.
    fn header_hash(&self) -> (u32, u32) {
        let m1 = self.hash.hash(MAGIC_FOOD);
        let m2 = self.hash.hash(&self.order.put(crate::format::MAGIC));
        if m1 == 0 && m2 == 0 {
            (1, 0)
        } else {
            (m1, m2)
        }
    }

    /// Whether the header was made with our hash function, trying the other
    /// built-in one when the caller did not choose (check_header_hash).
    fn check_header_hash(&mut self, header: &Header, default_hash: bool) -> bool {
        let (m1, m2) = self.header_hash();
        if header.magic1_hash == m1 && header.magic2_hash == m2 {
            return true;
        }
        if !default_hash {
            return false;
        }
        self.hash = match self.hash {
            HashFunction::Old => HashFunction::Jenkins,
            _ => HashFunction::Old,
        };
        self.check_header_hash(header, false)
    }

    fn mutex_open_ok(&self, header: &Header) -> bool {
        if self.flags & flags::NOLOCK != 0 {
            return true;
        }
        let name = self.name.to_string_lossy();
        if self.flags & flags::MUTEX_LOCKING == 0 {
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_mutex_open_ok[{}]: Can use mutexes only with MUTEX_LOCKING or NOLOCK\n",
                    name
                ),
            );
            return false;
        }
        let size = crate::mutex::mutex_area_size(self.hash_size, self.page_size);
        if size != header.mutex_size {
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_mutex_open_ok[{}]: Mutex size changed from {} to {}\n.",
                    name, header.mutex_size, size
                ),
            );
            return false;
        }
        true
    }

    /// Writes a fresh, empty database (or builds it in memory for TDB_INTERNAL).
    /// Returns the errno on failure.
    fn new_database(&mut self, hash_size: u32) -> std::result::Result<(), i32> {
        // Every offset of the hash table (and its lock) must fit in 32 bits.
        if hash_size > (u32::MAX - FREELIST_TOP) / OFF_SIZE - 1 {
            return Err(libc::ENOMEM);
        }
        let table_len = (hash_size as usize + 1) * 4;
        let order = if self.flags & flags::CONVERT != 0 {
            ByteOrder::Swapped
        } else {
            ByteOrder::Native
        };
        self.order = order;
        let mut header = Header {
            version: VERSION,
            hash_size,
            ..Header::default()
        };
        let (m1, m2) = self.header_hash();
        header.magic1_hash = m1;
        header.magic2_hash = m2;
        if self.flags & flags::INCOMPATIBLE_HASH != 0 {
            header.rwlocks = HASH_RWLOCK_MAGIC;
        }
        if self.flags & flags::MUTEX_LOCKING != 0 {
            header.feature_flags |= FEATURE_FLAG_MUTEX;
        }
        if header.feature_flags != 0 {
            header.rwlocks = FEATURE_FLAG_MAGIC;
        }
        self.feature_flags = header.feature_flags;
        self.hash_size = hash_size;
        if self.flags & flags::INTERNAL != 0 {
            let mut image = Vec::new();
            if image.try_reserve(HEADER_SIZE as usize + table_len).is_err() {
                return Err(libc::ENOMEM);
            }
            image.extend_from_slice(&header.encode(order));
            image.resize(HEADER_SIZE as usize + table_len, 0);
            self.map_size = image.len() as u32;
            self.storage = Storage::Internal(image);
            return Ok(());
        }
        let file = self.file.as_ref().ok_or(libc::EBADF)?;
        let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
        file.set_len(0).map_err(errno)?;
        if header.feature_flags & FEATURE_FLAG_MUTEX != 0 {
            header.mutex_size = crate::mutex::mutex_area_size(hash_size, self.page_size);
            self.hdr_ofs = header.mutex_size;
        }
        let mut image = header.encode(order).to_vec();
        image[..MAGIC_FOOD.len()].copy_from_slice(MAGIC_FOOD);
        image.resize(HEADER_SIZE as usize + table_len, 0);
        file.write_all_at(&image, 0).map_err(errno)?;
        if header.feature_flags & FEATURE_FLAG_MUTEX != 0 {
            // The mutex area, then a second copy of the header behind it: that is
            // the part that gets mapped.
            file.set_len(header.mutex_size as u64 + HEADER_SIZE as u64)
                .map_err(errno)?;
            self.mutex_init().map_err(errno)?;
            let file = self.file.as_ref().ok_or(libc::EBADF)?;
            file.write_all_at(&image, header.mutex_size as u64)
                .map_err(errno)?;
        }
        Ok(())
    }

    /// Closes the database, releasing its locks and mapping; commits nothing pending
    /// (an open transaction is cancelled first, as Samba does). Dropping a `Tdb`
    /// does the same, ignoring errors.
    pub fn close(mut self: Box<Self>) -> Result<()> {
        self.shutdown()
    }

    /// Cancels any transaction, forgets the file and closes the descriptor.
    fn shutdown(&mut self) -> Result<()> {
        if self.transaction.is_some() {
            let _ = self.transaction_cancel();
        }
        self.unregister();
        self.storage = Storage::Unmapped;
        self.mutexes = None;
        match self.file.take() {
            Some(f) => nix::unistd::close(f).map_err(|_| TdbError::Io),
            None => Ok(()),
        }
    }

    fn unregister(&mut self) {
        if self.file.is_some() {
            let mut open_files = OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = open_files
                .iter()
                .position(|&d| d == (self.device, self.inode))
            {
                open_files.swap_remove(i);
            }
        }
    }

    /// Reopens the file after fork, so that this process holds its own fcntl locks.
    /// On failure the handle is closed (only `close` may be called on it), as in Samba.
    pub fn reopen(&mut self) -> Result<()> {
        let active = self.flags & (flags::CLEAR_IF_FIRST | flags::MUTEX_LOCKING) != 0;
        self.reopen_internal(active)
    }

    /// Reopens, but for a CLEAR_IF_FIRST database of a long-lived parent only re-takes
    /// the active lock when `active_lock` is true (the tdb_reopen_all logic).
    pub fn reopen_for_fork(&mut self, parent_longlived: bool) -> Result<()> {
        let active =
            !parent_longlived && self.flags & (flags::CLEAR_IF_FIRST | flags::MUTEX_LOCKING) != 0;
        self.reopen_internal(active)
    }

    fn reopen_internal(&mut self, active_lock: bool) -> Result<()> {
        if self.flags & flags::INTERNAL != 0 {
            return Ok(());
        }
        let r = self.reopen_file(active_lock);
        if r.is_err() {
            // Samba closes the database when reopen fails.
            if self.transaction.is_none() {
                self.unregister();
                self.storage = Storage::Unmapped;
                self.mutexes = None;
                self.file = None;
            }
        }
        r
    }

    fn reopen_file(&mut self, active_lock: bool) -> Result<()> {
        if self.have_extra_locks() {
            self.log(
                DebugLevel::Error,
                "tdb_reopen: reopen not allowed with locks held\n",
            );
            return self.fail(TdbError::Lock);
        }
        if self.transaction.is_some() {
            self.log(
                DebugLevel::Error,
                "tdb_reopen: reopen not allowed inside a transaction\n",
            );
            return self.fail(TdbError::Einval);
        }
        self.storage = Storage::Unmapped;
        self.mutexes = None;
        self.file = None;
        let flags = self.open_flags & !(libc::O_CREAT | libc::O_TRUNC);
        let file = match open_file(&self.name, flags, 0) {
            Ok(file) => file,
            Err(err) => {
                self.log(
                    DebugLevel::Fatal,
                    &format!(
                        "tdb_reopen: open failed ({})\n",
                        crate::error::strerror(&err)
                    ),
                );
                return self.fail(TdbError::Io);
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                self.log(
                    DebugLevel::Fatal,
                    &format!(
                        "tdb_reopen: fstat failed ({})\n",
                        crate::error::strerror(&e)
                    ),
                );
                return self.fail(TdbError::Io);
            }
        };
        if meta.ino() != self.inode || meta.dev() != self.device {
            self.log(
                DebugLevel::Fatal,
                "tdb_reopen: file dev/inode has changed!\n",
            );
            return self.fail(TdbError::Io);
        }
        self.file = Some(file);
        self.map_size = 0;
        self.file_oob(0, 1, false)?;
        if self.have_mutexes() && self.flags & flags::NOLOCK == 0 && self.mutex_mmap().is_err() {
            return self.fail(TdbError::Io);
        }
        // The locks belonged to the old descriptor (or the parent process).
        self.lockrecs.clear();
        if active_lock
            && self
                .nest_lock(ACTIVE_LOCK, LockKind::Read, LockFlags::WAIT)
                .is_err()
        {
            self.log(
                DebugLevel::Fatal,
                "tdb_reopen: failed to obtain active lock\n",
            );
            return self.fail(TdbError::Lock);
        }
        Ok(())
    }

    /// Replaces the logger.
    pub fn set_logger(&mut self, logger: Option<Arc<dyn Logger>>) {
        self.logger = logger;
    }

    /// The current logger.
    pub fn logger(&self) -> Option<&Arc<dyn Logger>> {
        self.logger.as_ref()
    }

    /// The name the database was opened with.
    pub fn name(&self) -> &CStr {
        &self.name
    }

    /// The file descriptor, or -1 for TDB_INTERNAL.
    pub fn fd(&self) -> i32 {
        self.file.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
    }

    /// Number of hash chains.
    pub fn hash_size(&self) -> u32 {
        self.hash_size
    }

    /// Bytes of the file currently mapped (or its known size with TDB_NOMMAP).
    pub fn map_size(&self) -> usize {
        self.map_size as usize
    }

    /// The current TDB_* flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Sets TDB_* flags at runtime (only NOSYNC, SEQNUM, ALLOW/DISALLOW_NESTING and the like matter).
    pub fn add_flags(&mut self, flag: u32) {
        if flag & flags::ALLOW_NESTING != 0 && flag & flags::DISALLOW_NESTING != 0 {
            self.ecode = TdbError::Nesting.code();
            self.log(
                DebugLevel::Fatal,
                "tdb_add_flags: allow_nesting and disallow_nesting are not allowed together!",
            );
            return;
        }
        if flag & flags::ALLOW_NESTING != 0 {
            self.flags &= !flags::DISALLOW_NESTING;
        }
        if flag & flags::DISALLOW_NESTING != 0 {
            self.flags &= !flags::ALLOW_NESTING;
        }
        self.flags |= flag;
    }

    /// Clears TDB_* flags at runtime.
    pub fn remove_flags(&mut self, flag: u32) {
        if flag & flags::ALLOW_NESTING != 0 && flag & flags::DISALLOW_NESTING != 0 {
            self.ecode = TdbError::Nesting.code();
            self.log(
                DebugLevel::Fatal,
                "tdb_remove_flags: allow_nesting and disallow_nesting are not allowed together!",
            );
            return;
        }
        if flag & flags::NOLOCK != 0
            && self.feature_flags & FEATURE_FLAG_MUTEX != 0
            && self.mutexes.is_none()
        {
            self.ecode = TdbError::Lock.code();
            self.log(
                DebugLevel::Fatal,
                "tdb_remove_flags: Can not remove NOLOCK flag on mutexed databases",
            );
            return;
        }
        if flag & flags::ALLOW_NESTING != 0 {
            self.flags |= flags::DISALLOW_NESTING;
        }
        if flag & flags::DISALLOW_NESTING != 0 {
            self.flags |= flags::ALLOW_NESTING;
        }
        self.flags &= !flag;
    }

    /// The code of the last failed call (0 when none failed yet), as tdb_error.
    pub fn error(&self) -> i32 {
        self.ecode
    }

    /// Records `err` as the last error, for failures found by the C layer itself.
    pub fn set_error(&mut self, err: TdbError) {
        self.ecode = err.code();
    }

    /// Sets how many dead records a chain may keep before they are purged.
    pub fn set_max_dead(&mut self, max_dead: i32) {
        self.max_dead = max_dead;
    }

    /// Installs a probe that says whether a blocking lock wait should give up
    /// (tdb_setalarm_sigptr: the signal flag became non-zero).
    pub fn set_interrupt_probe(&mut self, probe: Option<Arc<dyn Fn() -> bool + Send + Sync>>) {
        self.interrupt = probe;
    }
}

/// Opens `path` close-on-exec with open(2) `flags` and `mode`; errno kept in the error.
fn open_file(path: &CStr, flags: i32, mode: u32) -> std::io::Result<File> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let flags = OFlag::from_bits_retain(flags | libc::O_CLOEXEC);
    #[allow(clippy::useless_conversion)] // mode_t is u32 on Linux, u16 elsewhere
    let mode = Mode::from_bits_truncate(mode as libc::mode_t);
    match nix::fcntl::open(path, flags, mode) {
        Ok(fd) => Ok(File::from(fd)),
        Err(errno) => Err(std::io::Error::from_raw_os_error(errno as i32)),
    }
}

impl Drop for Tdb {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Reads up to `buf.len()` bytes at `pos`, returning how many were read.
fn read_up_to(file: &File, buf: &mut [u8], pos: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    done
}
