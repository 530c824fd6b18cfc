//! Files written atomically: temp file, fsync, rename, fsync of the directory.

use std::io::Write;
use std::path::Path;

/// Default mode of the files we write: the broker reading them often runs as another user.
pub const DEFAULT_MODE: u32 = 0o644;

/// Writes `contents` to `path` (created as `mode`) unless it already holds exactly that; true
/// when written.
pub fn write_if_changed_mode(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    write_atomic_mode(path, contents, mode)?;
    Ok(true)
}

/// Replaces `path` with `contents` so that a reader sees the old file or the new one, never half;
/// the file is created as `mode` (the temp file is made 0600).
pub fn write_atomic_mode(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_when_changed_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/topics.json");
        let write = |text: &[u8]| write_if_changed_mode(&p, text, DEFAULT_MODE).unwrap();
        assert!(write(b"{}"));
        assert!(!write(b"{}"));
        assert!(write(b"{\"a\":1}"));
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\":1}");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "readable by the broker's user");
        assert!(write_if_changed_mode(&p, b"[]", 0o600).unwrap());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
