//! `cargo xtask data multimnist | multifashion | multi-fashion-mnist`: the two-item digit
//! benchmarks built from MNIST and Fashion-MNIST (`mtcool_data::multi`), written as IDX files
//! under `<data>/<name>/` with `manifest.json` (the seed, the generator, and the MD5 of every
//! source and output file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use md5::{Digest, Md5};
use mtcool_data::mnist::{self, MnistFiles};

use crate::data;

/// Options of the three generators.
#[derive(Debug, clap::Args)]
pub struct MultiArgs {
    /// Dataset root holding mnist/ and fashion-mnist/ (fetched or unpacked if absent).
    #[arg(long, default_value = "datasets")]
    data: PathBuf,
    /// Seed of the partner draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `cargo xtask data <kind>`.
pub fn run(kind: MultiKind, args: &MultiArgs) -> Result<ExitCode> {
    generate(&crate::in_workspace(&args.data), kind, args.seed)
        .with_context(|| format!("data {}", kind.folder()))?;
    Ok(ExitCode::SUCCESS)
}

/// Generates the benchmark stored in `<data_dir>/<folder>/` with seed 0 if `folder` names one
/// of the three and any of its files is missing (`reproduce multimnist` on a fresh machine).
pub fn ensure(data_dir: &Path, folder: &str) -> Result<()> {
    let Some(kind) = MultiKind::ALL.into_iter().find(|k| k.folder() == folder) else {
        return Ok(());
    };
    let dir = data_dir.join(folder);
    if mtcool_data::multi::FILES
        .iter()
        .all(|name| dir.join(name).is_file())
    {
        return Ok(());
    }
    eprintln!(
        "{}: not generated yet; generating it (seed 0)",
        dir.display()
    );
    generate(data_dir, kind, 0).with_context(|| format!("data {folder}"))
}

/// Which benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiKind {
    /// Two MNIST digits (Sener & Koltun, 2018).
    Multimnist,
    /// Two Fashion-MNIST items (Lin et al., 2019).
    Multifashion,
    /// An MNIST digit (left) and a Fashion-MNIST item (right) (Lin et al., 2019).
    MultiFashionMnist,
}

impl MultiKind {
    /// The three benchmarks.
    pub const ALL: [Self; 3] = [
        Self::Multimnist,
        Self::Multifashion,
        Self::MultiFashionMnist,
    ];

    /// The folder under the data root, also the experiment's name.
    pub fn folder(self) -> &'static str {
        match self {
            Self::Multimnist => "multimnist",
            Self::Multifashion => "multifashion",
            Self::MultiFashionMnist => "multi-fashion-mnist",
        }
    }

    /// The source folders of the left and the right item.
    fn sources(self) -> (&'static str, &'static str) {
        match self {
            Self::Multimnist => ("mnist", "mnist"),
            Self::Multifashion => ("fashion-mnist", "fashion-mnist"),
            Self::MultiFashionMnist => ("mnist", "fashion-mnist"),
        }
    }
}

fn md5_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(format!("{:x}", Md5::digest(bytes)))
}

/// Reads (fetching MNIST or unpacking Fashion-MNIST first if absent) one source folder.
fn source(
    data_dir: &Path,
    folder: &str,
    hashes: &mut BTreeMap<String, String>,
) -> Result<MnistFiles> {
    let dir = data_dir.join(folder);
    match folder {
        "mnist" => data::ensure_mnist(&dir, false)?,
        _ => data::ensure_fashion_mnist(&dir)?,
    }
    for name in mnist::FILE_NAMES {
        let path = mnist::locate(&dir, name)?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hashes.insert(format!("{folder}/{file}"), md5_of(&path)?);
    }
    Ok(mnist::load(&dir)?)
}

/// Generates `kind` from the sources under `data_dir` with `seed` into `<data_dir>/<folder>/`.
pub fn generate(data_dir: &Path, kind: MultiKind, seed: u64) -> Result<()> {
    let start = std::time::Instant::now();
    let mut sources = BTreeMap::new();
    let (left_folder, right_folder) = kind.sources();
    let left = source(data_dir, left_folder, &mut sources)?;
    let right = if right_folder == left_folder {
        left.clone()
    } else {
        source(data_dir, right_folder, &mut sources)?
    };
    let (train, test) = mtcool_data::multi::generate_splits(
        (&left.train, &left.test),
        (&right.train, &right.test),
        seed,
    );
    let out = data_dir.join(kind.folder());
    let written = mtcool_data::multi::write(&out, &train, &test)?;
    let mut files = BTreeMap::new();
    for path in &written {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(name, md5_of(path)?);
    }
    let manifest = serde_json::json!({
        "dataset": kind.folder(),
        "seed": seed,
        "generator": "mtcool_data::multi: Sener & Koltun's construction (36×36 canvas, left item at 0..28, right at 6..34, maximum where they overlap, nearest resize to 28×28); partners drawn uniformly from the right source's same split with ChaCha8 (stream 0 train, 1 test)",
        "left": left_folder,
        "right": right_folder,
        "train": train.left.len(),
        "test": test.left.len(),
        "sources": sources,
        "files": files,
    });
    let path = out.join("manifest.json");
    mtcool_train::results::write_atomic(
        &path,
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    println!(
        "wrote {} ({} train / {} test images) under {} in {:.1} s",
        kind.folder(),
        train.left.len(),
        test.left.len(),
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
