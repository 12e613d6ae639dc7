//! Writing key material and certificates to disk safely.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Creates `path` with `contents` and syncs it, refusing to overwrite an
/// existing file. `private` files are readable by their owner only.
pub fn write_new(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Syncs a directory so that the files just created in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
