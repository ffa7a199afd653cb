//! Robust process-shared pthread mutexes in the file's mutex area (TDB_MUTEX_LOCKING).

/// Whether this system supports robust process-shared mutexes (cached after the first call).
pub fn runtime_check_for_robust_mutexes() -> bool { todo!() }
