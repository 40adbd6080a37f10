//! A scratch directory for unit tests, removed when dropped (also when the
//! test fails), so that test runs leave nothing in /tmp.

use std::path::{Path, PathBuf};

pub struct TestDir(PathBuf);

impl TestDir {
    /// `$TMPDIR/portal-NAME-PID`, empty.
    pub fn new(name: &str) -> TestDir {
        let d = std::env::temp_dir().join(format!("portal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("test directory");
        TestDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
