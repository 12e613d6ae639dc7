//! Faults of the machine rather than the network, for the tests and the
//! soak: a small tmpfs that fills up (root only), and a wall clock shifted
//! by libfaketime (the Debian package `faketime`), which leaves the
//! monotonic clock alone as a machine whose NTP is off would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on `at`, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// [`Tmpfs::mount`], or `None` when the mount is refused (no
    /// CAP_SYS_ADMIN, as in some containers).
    pub fn try_mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?;
        ok.success().then(|| Self(at.to_path_buf()))
    }

    /// [`Tmpfs::try_mount`] over a folder that already holds files (a hub's
    /// data folder after `init`): they are copied onto the new disk, so the
    /// folder reads the same with every later write landing on the tmpfs.
    pub fn try_mount_keeping(at: &Path, size: &str) -> Option<Self> {
        let aside = at.with_extension("before-tmpfs");
        std::fs::rename(at, &aside).ok()?;
        let put_back = || {
            let _ = std::fs::remove_dir(at);
            let _ = std::fs::rename(&aside, at);
        };
        let Some(disk) = Self::try_mount(at, size) else {
            put_back();
            return None;
        };
        if !Command::new("cp").arg("-a").arg(aside.join(".")).arg(at).status().is_ok_and(|s| s.success()) {
            drop(disk);
            // the mount point holds nothing of its own once unmounted
            put_back();
            return None;
        }
        let _ = std::fs::remove_dir_all(&aside);
        Some(disk)
    }

    /// A tmpfs of `size` on `at`; panics when it cannot be mounted.
    pub fn mount(at: &Path, size: &str) -> Self {
        Self::try_mount(at, size).unwrap_or_else(|| panic!("cannot mount a tmpfs on {}", at.display()))
    }

    /// How full it is, as `df` says: "63M of 64M used".
    pub fn usage(&self) -> String {
        let out = Command::new("df").args(["-h", "--output=used,size"]).arg(&self.0).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        match text.lines().nth(1).map(|l| l.split_whitespace().collect::<Vec<_>>()) {
            Some(v) if v.len() == 2 => format!("{} of {} used", v[0], v[1]),
            _ => "(df says nothing)".into(),
        }
    }

    /// Fills it with one file until a write fails; returns that file.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        // what fits in less than a block
        while f.write_all(&block[..512]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// True when this process runs as root.
pub fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// libfaketime's library, if installed.
pub fn faketime_lib() -> Option<PathBuf> {
    let dirs = std::fs::read_dir("/usr/lib").ok()?;
    dirs.filter_map(|d| d.ok())
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.exists())
}

/// The environment that shifts a process's wall clock by `offset` (as
/// libfaketime writes it: "-10m", "+15m").
pub fn skewed(lib: &Path, offset: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        // each process reads its offset once; nothing is cached across processes
        ("FAKETIME_NO_CACHE".into(), "1".into()),
    ]
}
