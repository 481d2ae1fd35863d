//! Helpers shared by the binary's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `mtcool` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mtcool");

/// Runs `command`, failing the test with its output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{:?} failed:\n{}\n{}",
        command,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The child processes of `parent` (Linux).
pub fn children(parent: u32) -> Vec<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills `pid` with SIGKILL, as the out-of-memory killer or a lost node would.
pub fn kill(pid: u32) {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

/// A temporary folder holding the synthetic datasets under `data/`.
pub struct Synth {
    root: tempfile::TempDir,
}

impl Synth {
    /// Writes every synthetic dataset (`mtcool_data::synth`) into a fresh folder.
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        mtcool_data::synth::write_all(&root.path().join("data"), &Default::default(), 0).unwrap();
        Self { root }
    }

    /// A path inside the folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `experiments/<name>.toml` of the workspace, edited by `edit`, written into the folder.
    pub fn config(&self, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let experiments =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let text = std::fs::read_to_string(experiments.join(format!("{name}.toml"))).unwrap();
        let path = self.path(&format!("{name}.toml"));
        std::fs::write(&path, edit(text)).unwrap();
        path
    }
}
