//! Claiming a run with a lock file, so that many grids (processes on one machine, SLURM array
//! tasks on many nodes) can share one results folder and train each run once.
//!
//! A claim is `runs/<stem>.lock`, created with `create_new` (atomic on local file systems and
//! NFS v3+), holding who took it (host, pid, a random token). While the claim is held a
//! heartbeat thread refreshes the file's modification time, and dropping the claim removes the
//! file. A lock is *stale* when its process is gone (same host: no `/proc/<pid>`), or when its
//! heartbeat stopped for [`STALE_AFTER`] (any host: a killed node, a reused pid). A stale lock
//! is taken over, with a log line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

use super::ticker::Ticker;

/// How often a held claim refreshes its lock file's modification time.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A lock whose heartbeat is older than this is stale, whatever host wrote it.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Who holds a run: the contents of its lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Host name of the process.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// A random token telling two claims of the same process apart.
    pub token: String,
    /// When the claim was taken (seconds since the Unix epoch).
    pub since: u64,
}

impl LockOwner {
    fn this_process() -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            token: format!("{:016x}", rand::rng().next_u64()),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl std::fmt::Display for LockOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// This machine's host name (as lock files and logs name it).
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The lock file of a run file.
pub fn lock_path(run_file: &Path) -> PathBuf {
    run_file.with_extension("lock")
}

/// What [`try_claim`] found.
#[derive(Debug)]
pub enum ClaimAttempt {
    /// The run is ours until the claim is dropped.
    Claimed(Claim),
    /// Another live process holds it.
    HeldBy(LockOwner),
}

/// A held claim; dropping it stops the heartbeat and removes the lock file.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    owner: LockOwner,
    heartbeat: Option<Ticker>,
}

impl Claim {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        drop(self.heartbeat.take());
        // Remove the file only if it is still ours (a takeover may have replaced it).
        if read_owner(&self.path).is_some_and(|o| o == self.owner) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why a lock is stale, or `None` when its owner may still be working.
pub fn staleness(path: &Path, owner: &LockOwner) -> Option<String> {
    if owner.host == host_name() && process_gone(owner.pid) {
        return Some(format!("{owner} is no longer running"));
    }
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())?;
    (age > STALE_AFTER).then(|| format!("{owner} gave no sign of life for {} s", age.as_secs()))
}

/// Whether process `pid` of this host is gone (`false` where that cannot be told).
fn process_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.is_dir() && !proc.join(pid.to_string()).exists()
}

/// Reads a lock file's owner (`None` when absent or unreadable, e.g. half-written).
pub fn read_owner(path: &Path) -> Option<LockOwner> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Claims the run whose lock file is `path`, taking over a stale lock.
///
/// # Errors
/// The folder cannot be written (e.g. a read-only `--out`).
pub fn try_claim(path: &Path) -> Result<ClaimAttempt> {
    for _ in 0..3 {
        match create_lock(path)? {
            Some(claim) => return Ok(ClaimAttempt::Claimed(claim)),
            None => {
                let Some(owner) = read_owner(path) else {
                    // Being written this instant, or garbage: give the writer a moment.
                    std::thread::sleep(Duration::from_millis(200));
                    if let Some(owner) = read_owner(path) {
                        if staleness(path, &owner).is_none() {
                            return Ok(ClaimAttempt::HeldBy(owner));
                        }
                    }
                    tracing::warn!(
                        "{}: unreadable lock file; taking the run over",
                        path.display()
                    );
                    remove_if_unchanged(path, None);
                    continue;
                };
                match staleness(path, &owner) {
                    None => return Ok(ClaimAttempt::HeldBy(owner)),
                    Some(why) => {
                        tracing::warn!(
                            "{}: stale lock ({why}); taking the run over",
                            path.display()
                        );
                        remove_if_unchanged(path, Some(&owner));
                    }
                }
            }
        }
    }
    match read_owner(path) {
        Some(owner) => Ok(ClaimAttempt::HeldBy(owner)),
        None => Err(TrainError::Results {
            path: path.to_path_buf(),
            problem: "lock file could neither be claimed nor read".into(),
        }),
    }
}

/// Creates the lock file if it does not exist; `None` if it does.
fn create_lock(path: &Path) -> Result<Option<Claim>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    let owner = LockOwner::this_process();
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    let text = serde_json::to_string(&owner).unwrap_or_default();
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| TrainError::io(path, e))?;
    let beating = path.to_path_buf();
    let heartbeat = Ticker::start(HEARTBEAT, move || {
        if let Ok(file) = OpenOptions::new().write(true).open(&beating) {
            let _ = file.set_modified(SystemTime::now());
        }
    });
    Ok(Some(Claim {
        path: path.to_path_buf(),
        owner,
        heartbeat: Some(heartbeat),
    }))
}

/// Removes a stale lock, unless another process replaced it meanwhile: the lock is moved
/// aside first (only one of several racing processes can move it), then its contents are
/// checked against what was judged stale; a fresh lock moved by mistake is put back.
fn remove_if_unchanged(path: &Path, stale: Option<&LockOwner>) {
    let aside = path.with_extension(format!("lock.stale.{}", std::process::id()));
    if std::fs::rename(path, &aside).is_err() {
        return;
    }
    let moved = read_owner(&aside);
    if stale.is_some() && moved.as_ref() != stale {
        let _ = std::fs::hard_link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_claim_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/joint-seed0.lock");
        let ClaimAttempt::Claimed(claim) = try_claim(&path).unwrap() else {
            panic!("first claim refused")
        };
        match try_claim(&path).unwrap() {
            ClaimAttempt::HeldBy(owner) => assert_eq!(owner.pid, std::process::id()),
            ClaimAttempt::Claimed(_) => panic!("claimed twice"),
        }
        drop(claim);
        assert!(!path.exists());
        assert!(matches!(
            try_claim(&path).unwrap(),
            ClaimAttempt::Claimed(_)
        ));
    }

    #[test]
    fn a_dead_process_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // a process that has exited: its pid is free
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = LockOwner {
            host: host_name(),
            pid,
            token: "t".into(),
            since: 0,
        };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        assert!(staleness(&path, &dead).is_some());
        let ClaimAttempt::Claimed(claim) = try_claim(&path).unwrap() else {
            panic!("stale lock not taken over")
        };
        assert_eq!(read_owner(claim.path()).unwrap().pid, std::process::id());
    }

    #[test]
    fn a_live_lock_of_another_host_is_respected_until_its_heartbeat_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let other = LockOwner {
            host: "some-other-node".into(),
            pid: 1,
            token: "t".into(),
            since: 0,
        };
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        assert!(matches!(try_claim(&path).unwrap(), ClaimAttempt::HeldBy(o) if o == other));
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(5);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(matches!(
            try_claim(&path).unwrap(),
            ClaimAttempt::Claimed(_)
        ));
    }
}
