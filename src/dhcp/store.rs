//! Leases on disk: a JSON snapshot written atomically (temp file, fsync,
//! rename) plus a journal of JSON lines appended since. The service appends
//! the changes of a batch of requests, fsyncs once, and only then sends the
//! batch's replies: an ACKed lease is on disk before the ACK leaves, and
//! one fsync covers many clients under load. The journal is folded into a
//! new snapshot at start and when it grows past the table's size.
//!
//! Folding writes the whole table (megabytes with tens of thousands of
//! leases): done on the serving thread it held every reply for tens of ms,
//! and the backlog then left as one burst that clients' receive buffers
//! dropped. So it runs on a thread of its own: the journal is renamed to
//! `.journal.old`, a new one is started, and the thread writes the snapshot
//! of the table as it was at the rename, then removes the old journal. A
//! crash at any point replays snapshot, old journal, journal, in that
//! order; replaying a change the snapshot already holds is harmless, as
//! every change sets a final value.

use super::lease::{Change, Lease, LeaseTable};
use crate::state::write_json_atomic;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

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
    /// The snapshot being written in the background; its result.
    folding: Option<JoinHandle<Result<(), String>>>,
}

fn paths(dir: &Path, lan: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("leases-{lan}.json")),
        dir.join(format!("leases-{lan}.journal")),
    )
}

/// The journal a background fold is folding into the snapshot.
fn old_journal(journal: &Path) -> PathBuf {
    journal.with_extension("journal.old")
}

fn replay(t: &mut LeaseTable, journal: &Path) {
    if let Ok(text) = fs::read_to_string(journal) {
        for line in text.lines() {
            match serde_json::from_str::<Change>(line) {
                Ok(c) => t.apply(c),
                Err(_) => break,
            }
        }
    }
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
    replay(&mut t, &old_journal(&journal));
    replay(&mut t, &journal);
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
            folding: None,
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
            self.fold_in_background(table)?;
        }
        Ok(())
    }

    /// Starts folding the journal into a snapshot on a thread of its own,
    /// unless one still runs (then the journal just grows a little more).
    fn fold_in_background(&mut self, table: &LeaseTable) -> Result<(), String> {
        if let Some(h) = &self.folding {
            if !h.is_finished() {
                return Ok(());
            }
        }
        let failed = match self.folding.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => false,
            Some(Ok(Err(e))) => {
                crate::log::error(&format!("dhcp: leases snapshot: {e}"));
                true
            }
            Some(Err(_)) => true,
        };
        let old = old_journal(&self.journal_path);
        // The last fold did not finish: its old journal is still needed, so
        // fold everything here, as at start.
        if failed || old.exists() {
            return self.compact(table);
        }
        fs::rename(&self.journal_path, &old)
            .map_err(|e| format!("cannot rename {}: {e}", self.journal_path.display()))?;
        self.journal = File::create(&self.journal_path)
            .map_err(|e| format!("cannot open {}: {e}", self.journal_path.display()))?;
        // The new journal's name must be on disk before an ACK depends on
        // what is fsynced into it.
        if let Some(dir) = self.journal_path.parent() {
            crate::state::sync_dir(dir);
        }
        self.lines = 0;
        let (snapshot, leases) = (self.snapshot.clone(), table.durable());
        self.folding = Some(std::thread::spawn(move || {
            write_json_atomic(&snapshot, &Snapshot { leases })?;
            fs::remove_file(&old).map_err(|e| format!("cannot remove {}: {e}", old.display()))
        }));
        Ok(())
    }

    /// Snapshot first, then empty the journal: a crash in between replays
    /// the journal onto a snapshot that already holds it, which is harmless
    /// because every change sets a final value.
    fn compact(&mut self, table: &LeaseTable) -> Result<(), String> {
        if let Some(h) = self.folding.take() {
            let _ = h.join();
        }
        write_json_atomic(
            &self.snapshot,
            &Snapshot {
                leases: table.durable(),
            },
        )?;
        let old = old_journal(&self.journal_path);
        if old.exists() {
            fs::remove_file(&old).map_err(|e| format!("cannot remove {}: {e}", old.display()))?;
        }
        self.journal = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.journal_path)
            .map_err(|e| format!("cannot reset {}: {e}", self.journal_path.display()))?;
        self.lines = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::lease::LeaseState;

    fn lease(last: u8, state: LeaseState) -> Lease {
        Lease {
            address: Ipv4Addr::new(192, 168, 10, last),
            client: format!("02:00:00:00:00:{last:02x}"),
            mac: format!("02:00:00:00:00:{last:02x}"),
            hostname: None,
            expires: 1_700_000_000 + last as u64,
            state,
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("portal-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    const START: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 100);

    #[test]
    fn committed_changes_survive_a_restart_and_offers_do_not() {
        let dir = tempdir("restart");
        let (mut store, mut table) = LeaseStore::open(&dir, "home", START).unwrap();
        let changes = vec![
            Change::Put(lease(100, LeaseState::Bound)),
            Change::Put(lease(101, LeaseState::Offered)),
            Change::Put(lease(102, LeaseState::Bound)),
            Change::Remove(Ipv4Addr::new(192, 168, 10, 102)),
            Change::Put(lease(103, LeaseState::Declined)),
        ];
        store.record(&changes);
        for c in changes {
            table.apply(c);
        }
        store.commit(&table).unwrap();
        // As after SIGKILL: no shutdown step, the journal holds the batch.
        drop(store);
        let back = read(&dir, "home", START);
        assert_eq!(back.durable(), table.durable());
        assert_eq!(back.durable().len(), 2);
        assert!(
            back.get(Ipv4Addr::new(192, 168, 10, 101)).is_none(),
            "offers are not written"
        );
        // Opening again folds the journal into the snapshot and empties it.
        let (_s, t) = LeaseStore::open(&dir, "home", START).unwrap();
        assert_eq!(t.durable(), table.durable());
        assert_eq!(
            fs::read_to_string(dir.join("leases-home.journal")).unwrap(),
            ""
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_journal_line_is_ignored() {
        let dir = tempdir("torn");
        let (mut store, mut table) = LeaseStore::open(&dir, "home", START).unwrap();
        let c = vec![Change::Put(lease(100, LeaseState::Bound))];
        store.record(&c);
        table.apply(c[0].clone());
        store.commit(&table).unwrap();
        drop(store);
        // A power cut in the middle of the next append.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("leases-home.journal"))
            .unwrap();
        f.write_all(b"{\"put\":{\"address\":\"192.168.10.1")
            .unwrap();
        let back = read(&dir, "home", START);
        assert_eq!(back.durable(), table.durable());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_journal_is_compacted_when_it_outgrows_the_table() {
        let dir = tempdir("compact");
        let (mut store, mut table) = LeaseStore::open(&dir, "home", START).unwrap();
        for i in 0..(COMPACT_AFTER + 10) {
            let mut l = lease(100, LeaseState::Bound);
            l.expires += i as u64;
            let c = vec![Change::Put(l)];
            store.record(&c);
            table.apply(c[0].clone());
            store.commit(&table).unwrap();
        }
        let journal = fs::read_to_string(dir.join("leases-home.journal")).unwrap();
        assert!(journal.lines().count() < 20, "compacted");
        assert_eq!(read(&dir, "home", START).durable(), table.durable());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fold_in_flight_loses_nothing() {
        let dir = tempdir("fold");
        let (mut store, mut table) = LeaseStore::open(&dir, "home", START).unwrap();
        let put = |store: &mut LeaseStore, table: &mut LeaseTable, last: u8, i: u64| {
            let mut l = lease(last, LeaseState::Bound);
            l.expires += i;
            let c = vec![Change::Put(l)];
            store.record(&c);
            table.apply(c[0].clone());
            store.commit(table).unwrap();
        };
        for i in 0..=COMPACT_AFTER as u64 {
            put(&mut store, &mut table, 100, i);
        }
        // The fold started: a new journal takes the next changes.
        let old = dir.join("leases-home.journal.old");
        put(&mut store, &mut table, 101, 0);
        assert_eq!(read(&dir, "home", START).durable(), table.durable());
        let h = store.folding.take().unwrap();
        h.join().unwrap().unwrap();
        assert!(!old.exists(), "removed once the snapshot is written");
        assert_eq!(read(&dir, "home", START).durable(), table.durable());
        // As after a crash before a snapshot was written: an old journal
        // and no snapshot; it is replayed before the journal.
        fs::write(&old, fs::read(dir.join("leases-home.journal")).unwrap()).unwrap();
        fs::remove_file(dir.join("leases-home.json")).unwrap();
        let back = read(&dir, "home", START);
        assert!(back.get(Ipv4Addr::new(192, 168, 10, 101)).is_some());
        // Opening folds the old journal too and removes it.
        drop(store);
        let (_s, t) = LeaseStore::open(&dir, "home", START).unwrap();
        assert!(t.get(Ipv4Addr::new(192, 168, 10, 101)).is_some());
        assert!(!old.exists());
        let _ = fs::remove_file(&old);
        let _ = fs::remove_dir_all(&dir);
    }
}
