//! The images a prediction reads: files as given, folders walked (sorted, recursively).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif", "ppm"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn input_error(path: &Path, problem: impl Into<String>) -> TrainError {
    TrainError::Results {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Every image of `inputs`: files as given (they must have an image extension), folders
/// walked. Fails on a missing path, a file of another format, a folder without images, or two
/// images of the same name (their outputs would collide).
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let before = images.len();
            walk(input, &mut images)?;
            if images.len() == before {
                return Err(input_error(
                    input,
                    format!(
                        "no images in this folder (looked for .{})",
                        IMAGE_EXTENSIONS.join(", .")
                    ),
                ));
            }
        } else if input.is_file() {
            if !is_image(input) {
                return Err(input_error(
                    input,
                    format!(
                        "unsupported image format (expected .{})",
                        IMAGE_EXTENSIONS.join(", .")
                    ),
                ));
            }
            images.push(input.clone());
        } else {
            return Err(input_error(input, "no such file or folder"));
        }
    }
    if images.is_empty() {
        return Err(TrainError::Config {
            path: "--input".into(),
            problem: "no input images given".into(),
        });
    }
    let mut seen: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for image in &images {
        let stem = image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(first) = seen.insert(stem.clone(), image) {
            return Err(input_error(
                image,
                format!(
                    "has the name `{stem}` of {} too; their outputs would collide",
                    first.display()
                ),
            ));
        }
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn folders_are_walked_and_bad_inputs_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        for f in ["a/x.png", "a/b/y.JPG", "a/notes.txt", "a/.hidden.png"] {
            std::fs::write(root.join(f), b"").unwrap();
        }
        let found = collect_inputs(&[root.join("a")]).unwrap();
        assert_eq!(found, vec![root.join("a/b/y.JPG"), root.join("a/x.png")]);
        let err = collect_inputs(&[root.join("a/notes.txt")]).unwrap_err();
        assert!(
            err.to_string().contains("unsupported image format"),
            "{err}"
        );
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let err = collect_inputs(&[root.join("empty")]).unwrap_err();
        assert!(
            err.to_string().contains("no images in this folder"),
            "{err}"
        );
        let err = collect_inputs(&[root.join("a"), root.join("a/x.png")]).unwrap_err();
        assert!(err.to_string().contains("would collide"), "{err}");
        let err = collect_inputs(&[root.join("nothing")]).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
