//! The scripts of one component directory, by Samba's rules: a script is a
//! file named `NN.name.script` (two digits, a dot, anything, `.script`),
//! listed in byte order; it is enabled when the file it names (symlinks
//! followed) has the owner's execute bit.  Enabling and disabling set and
//! clear all three execute bits of a regular file; a symlink is refused.

use nix::errno::Errno;
use nix::sys::stat::{fchmod, fstat, stat, Mode};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirEntryExt;
use std::path::Path;

/// The suffix every script file name ends with.
pub const SCRIPT_SUFFIX: &str = ".script";
/// The longest path Samba builds (PATH_MAX).
const PATH_MAX: usize = 4096;

/// One script of a component: its name without `.script` and whether it
/// would run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptEntry {
    /// File name without the `.script` suffix, e.g. "10.interface".
    pub name: String,
    /// The file (followed through symlinks) exists and is executable by
    /// its owner.
    pub enabled: bool,
}

/// True for names matching `[0-9][0-9].*.script`.
pub fn is_script_file_name(name: &[u8]) -> bool {
    name.len() >= 2 + 1 + SCRIPT_SUFFIX.len()
        && name[0].is_ascii_digit()
        && name[1].is_ascii_digit()
        && name[2] == b'.'
        && name.ends_with(SCRIPT_SUFFIX.as_bytes())
}

/// The scripts in `dir`, sorted by name bytes; the error is the errno of
/// reading the directory (ENOENT when it is gone).
pub fn list(dir: &Path) -> Result<Vec<ScriptEntry>, Errno> {
    let rd = std::fs::read_dir(dir).map_err(io_errno)?;
    let mut files: Vec<Vec<u8>> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_errno)?;
        let name = entry.file_name().as_bytes().to_vec();
        if is_script_file_name(&name) {
            files.push(name);
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|file| {
            let path = dir.join(std::ffi::OsStr::from_bytes(&file));
            let enabled = stat(&path)
                .map(|st| st.st_mode & libc::S_IXUSR != 0)
                .unwrap_or(false);
            let name = &file[..file.len() - SCRIPT_SUFFIX.len()];
            ScriptEntry {
                name: String::from_utf8_lossy(name).into_owned(),
                enabled,
            }
        })
        .collect())
}

/// The errno of an I/O error (EIO when it has none).
pub fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Sets (`enable`) or clears the execute bits of `script` in `dir`; the
/// name may carry the `.script` suffix or not.  Errors as Samba's: ENOENT
/// when no such file is in the directory, EINVAL when the file is not a
/// script name or is a symlink, ENAMETOOLONG, or the errno of the
/// directory read, open or chmod.
pub fn set_enabled(dir: &Path, script: &str, enable: bool) -> Result<(), Errno> {
    let file = if script.len() > SCRIPT_SUFFIX.len() && script.ends_with(SCRIPT_SUFFIX) {
        script.to_string()
    } else {
        format!("{script}{SCRIPT_SUFFIX}")
    };
    if file.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let inode = find_entry(dir, file.as_bytes())?;
    let path = dir.join(&file);
    if path.as_os_str().len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_errno)?;
    let st = fstat(&f)?;
    if st.st_ino != inode {
        return Err(Errno::EINVAL);
    }
    let exec = libc::S_IXUSR | libc::S_IXGRP | libc::S_IXOTH;
    let mode = if enable {
        st.st_mode | exec
    } else {
        st.st_mode & !exec
    };
    fchmod(&f, Mode::from_bits_truncate(mode & 0o7777))
}

/// The inode of the directory entry named `file`: ENOENT when there is
/// none, EINVAL when it is there but is not a script name.
fn find_entry(dir: &Path, file: &[u8]) -> Result<u64, Errno> {
    let rd = std::fs::read_dir(dir).map_err(io_errno)?;
    for entry in rd {
        let entry = entry.map_err(io_errno)?;
        if entry.file_name().as_bytes() == file {
            if !is_script_file_name(file) {
                return Err(Errno::EINVAL);
            }
            return Ok(entry.ino());
        }
    }
    Err(Errno::ENOENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("eventd-scripts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(dir: &Path, name: &str, mode: u32) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn script_names_follow_samba_pattern() {
        for ok in ["01.a.script", "99..script", "10.interface.script"] {
            assert!(is_script_file_name(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "01.script",
            "1.a.script",
            "0a.b.script",
            "01-a.script",
            "01.a.sh",
            "README",
        ] {
            assert!(!is_script_file_name(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn list_is_sorted_and_enabled_follows_execute_bit_and_symlinks() {
        let d = temp_dir("list");
        write(&d, "20.b.script", 0o755);
        write(&d, "10.a.script", 0o644);
        write(&d, "target", 0o755);
        std::os::unix::fs::symlink(d.join("target"), d.join("30.link.script")).unwrap();
        std::os::unix::fs::symlink(d.join("missing"), d.join("40.dangling.script")).unwrap();
        write(&d, "notascript", 0o755);
        let l = list(&d).unwrap();
        let got: Vec<_> = l.iter().map(|e| (e.name.as_str(), e.enabled)).collect();
        assert_eq!(
            got,
            [
                ("10.a", false),
                ("20.b", true),
                ("30.link", true),
                ("40.dangling", false)
            ]
        );
        assert_eq!(list(&d.join("nope")), Err(Errno::ENOENT));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn enable_disable_set_bits_and_refuse_like_samba() {
        let d = temp_dir("chmod");
        write(&d, "10.a.script", 0o644);
        write(&d, "target", 0o755);
        write(&d, "plain", 0o755);
        std::os::unix::fs::symlink(d.join("target"), d.join("30.link.script")).unwrap();
        let mode = |n: &str| std::fs::metadata(d.join(n)).unwrap().permissions().mode() & 0o777;
        set_enabled(&d, "10.a", true).unwrap();
        assert_eq!(mode("10.a.script"), 0o755);
        set_enabled(&d, "10.a.script", false).unwrap();
        assert_eq!(mode("10.a.script"), 0o644);
        assert_eq!(set_enabled(&d, "11.missing", true), Err(Errno::ENOENT));
        assert_eq!(set_enabled(&d, "30.link", false), Err(Errno::EINVAL));
        assert_eq!(mode("target"), 0o755);
        assert_eq!(
            set_enabled(&d.join("nodir"), "10.a", true),
            Err(Errno::ENOENT)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
