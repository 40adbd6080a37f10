//! Leases on disk: a JSON snapshot written atomically (temp file, fsync,
//! rename) plus a journal of JSON lines appended since. The service appends
//! the changes of a batch of requests, fsyncs once, and only then sends the
//! batch's replies: an ACKed lease is on disk before the ACK leaves, and
//! one fsync covers many clients under load. The journal is folded into a
//! new snapshot at start and when it grows past the table's size.

use super::lease::{Change, Lease, LeaseTable};
use crate::state::write_json_atomic;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Journal lines before a snapshot, at least.
const COMPACT_AFTER: usize = 1024;

#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    leases: Vec<Lease>,
}

pub struct LeaseStore {
    snapshot: PathBuf,
    journal_path: PathBuf,
    journal: File,
    pending: Vec<u8>,
    lines: usize,
}

fn paths(dir: &Path, lan: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("leases-{lan}.json")),
        dir.join(format!("leases-{lan}.journal")),
    )
}

/// The durable leases of a LAN as on disk: snapshot, then journal replayed.
/// A torn last line (power cut mid-write) ends the replay: its reply was
/// never sent, because the fsync had not returned.
pub fn read(dir: &Path, lan: &str, pool_start: Ipv4Addr) -> LeaseTable {
    let (snap, journal) = paths(dir, lan);
    let base: Snapshot = fs::read(&snap)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut t = LeaseTable::with_leases(pool_start, base.leases);
    if let Ok(text) = fs::read_to_string(&journal) {
        for line in text.lines() {
            match serde_json::from_str::<Change>(line) {
                Ok(c) => t.apply(c),
                Err(_) => break,
            }
        }
    }
    t
}

impl LeaseStore {
    /// Loads the table and starts a fresh journal on a new snapshot.
    pub fn open(
        dir: &Path,
        lan: &str,
        pool_start: Ipv4Addr,
    ) -> Result<(LeaseStore, LeaseTable), String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (snapshot, journal_path) = paths(dir, lan);
        let table = read(dir, lan, pool_start);
        let journal = File::create(&journal_path)
            .map_err(|e| format!("cannot open {}: {e}", journal_path.display()))?;
        let mut s = LeaseStore {
            snapshot,
            journal_path,
            journal,
            pending: Vec::new(),
            lines: 0,
        };
        s.compact(&table)?;
        Ok((s, table))
    }

    /// Queues the durable changes for the next `commit`.
    pub fn record(&mut self, changes: &[Change]) {
        for c in changes.iter().filter(|c| c.durable()) {
            // Serializing plain data into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.pending, c);
            self.pending.push(b'\n');
            self.lines += 1;
        }
    }

    /// Writes and fsyncs what `record` queued. Only after this returns Ok
    /// may the replies that depend on it be sent.
    pub fn commit(&mut self, table: &LeaseTable) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let shown = self.journal_path.display().to_string();
        self.journal
            .write_all(&self.pending)
            .and_then(|_| self.journal.sync_data())
            .map_err(|e| format!("cannot write {shown}: {e}"))?;
        self.pending.clear();
        if self.lines > COMPACT_AFTER.max(table.len()) {
            self.compact(table)?;
        }
        Ok(())
    }

    /// Snapshot first, then empty the journal: a crash in between replays
    /// the journal onto a snapshot that already holds it, which is harmless
    /// because every change sets a final value.
    fn compact(&mut self, table: &LeaseTable) -> Result<(), String> {
        write_json_atomic(
            &self.snapshot,
            &Snapshot {
                leases: table.durable(),
            },
        )?;
        self.journal = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.journal_path)
            .map_err(|e| format!("cannot reset {}: {e}", self.journal_path.display()))?;
        self.lines = 0;
        Ok(())
    }
}
