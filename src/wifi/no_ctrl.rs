//! The control interface in a build without the `wifi` feature: every
//! call fails with the reason (validation refuses WiFi LANs in such a
//! build, so the agent never gets here).

use std::path::Path;
use std::time::Duration;

const WHY: &str = "this build of portal has no WiFi support (the `wifi` feature)";

pub struct Ctrl;

impl Ctrl {
    pub fn open(_socket: &Path) -> Result<Ctrl, String> {
        Err(WHY.into())
    }

    pub fn request(&mut self, _cmd: &str, _timeout: Duration) -> Result<String, String> {
        Err(WHY.into())
    }

    pub fn attach(&mut self, _timeout: Duration) -> Result<(), String> {
        Err(WHY.into())
    }

    pub fn recv(&mut self, _timeout: Duration) -> Result<Option<String>, String> {
        Err(WHY.into())
    }
}
