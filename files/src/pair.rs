//! A key and its certificate replaced together (a renewal): both new files
//! are written and synced as `NAME.new`, then renamed over the old ones,
//! key first. A kill at any line leaves a state [`finish`] settles at the
//! next load: both new files whole and matching (or the certificate alone,
//! the key already moved) complete the switch; a half-written pair is
//! dropped and the old pair, still valid, stays.

use std::path::{Path, PathBuf};

fn new_name(path: &Path) -> PathBuf {
    path.with_extension(format!("{}.new", path.extension().and_then(|e| e.to_str()).unwrap_or_default()))
}

/// Replaces the key at `key_path` (written 0600) and the certificate at `cert_path`.
pub fn switch(key_path: &Path, key_pem: &str, cert_path: &Path, cert_pem: &str) -> std::io::Result<()> {
    let (key_new, cert_new) = (new_name(key_path), new_name(cert_path));
    let _ = std::fs::remove_file(&key_new);
    let _ = std::fs::remove_file(&cert_new);
    crate::write_new(&key_new, key_pem.as_bytes(), true)?;
    crate::write_new(&cert_new, cert_pem.as_bytes(), false)?;
    let dir = key_path.parent().unwrap_or(Path::new("."));
    crate::sync_dir(dir)?;
    std::fs::rename(&key_new, key_path)?;
    std::fs::rename(&cert_new, cert_path)?;
    crate::sync_dir(dir)
}

/// Settles a switch a kill interrupted; `matches(key_pem, cert_pem)` says
/// whether a key is the one a certificate certifies.
pub fn finish(key_path: &Path, cert_path: &Path, matches: impl Fn(&str, &str) -> bool) -> std::io::Result<()> {
    let (key_new, cert_new) = (new_name(key_path), new_name(cert_path));
    if !key_new.exists() && !cert_new.exists() {
        return Ok(());
    }
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    match (read(&key_new), read(&cert_new)) {
        (Some(k), Some(c)) if matches(&k, &c) => {
            std::fs::rename(&key_new, key_path)?;
            std::fs::rename(&cert_new, cert_path)?;
        }
        (None, Some(c)) if read(key_path).is_some_and(|k| matches(&k, &c)) => std::fs::rename(&cert_new, cert_path)?,
        // half written: the old pair stays, and is renewed again later
        _ => {
            let _ = std::fs::remove_file(&key_new);
            let _ = std::fs::remove_file(&cert_new);
        }
    }
    crate::sync_dir(key_path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_switch_cut_short_anywhere_settles_on_one_whole_pair() {
        let same = |k: &str, c: &str| k.trim_start_matches("key") == c.trim_start_matches("cert");
        let tmp = tempfile::tempdir().unwrap();
        let (k, c) = (tmp.path().join("agent.key"), tmp.path().join("agent.crt"));
        let reset = || {
            std::fs::write(&k, "key1").unwrap();
            std::fs::write(&c, "cert1").unwrap();
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        // both new files written: completed
        reset();
        std::fs::write(new_name(&k), "key2").unwrap();
        std::fs::write(new_name(&c), "cert2").unwrap();
        finish(&k, &c, same).unwrap();
        assert_eq!((read(&k), read(&c)), ("key2".into(), "cert2".into()));
        // the key already moved: the certificate follows
        reset();
        std::fs::write(&k, "key2").unwrap();
        std::fs::write(new_name(&c), "cert2").unwrap();
        finish(&k, &c, same).unwrap();
        assert_eq!((read(&k), read(&c)), ("key2".into(), "cert2".into()));
        // the certificate half written: the old pair stays
        reset();
        std::fs::write(new_name(&k), "key2").unwrap();
        std::fs::write(new_name(&c), "cer").unwrap();
        finish(&k, &c, same).unwrap();
        assert_eq!((read(&k), read(&c)), ("key1".into(), "cert1".into()));
        assert!(!new_name(&k).exists() && !new_name(&c).exists());
        // a whole switch
        switch(&k, "key3", &c, "cert3").unwrap();
        assert_eq!((read(&k), read(&c)), ("key3".into(), "cert3".into()));
    }
}
