//! `mtcool predict` through the real binary: models of quick runs on synthetic files in the
//! providers' formats (REFUGE, HRF-AV, pets, OrganCMNIST) applied to images of those formats,
//! and every bad input refused in one line with nothing left in `--out`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, Synth, BIN};
use mtcool_data::image_io;

struct Setup {
    synth: Synth,
}

impl Setup {
    fn new() -> Self {
        Self {
            synth: Synth::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.synth.path(rel)
    }

    /// Trains Joint for one quick epoch of `experiment` (its config edited by `edit`) and
    /// returns the run's checkpoint.
    fn checkpoint(&self, experiment: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let config = self.synth.config(experiment, edit);
        run(Command::new(BIN)
            .arg("train")
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(self.path("data"))
            .arg("--out")
            .arg(self.path("results"))
            .args(["--quick", "--epochs", "1", "--methods", "joint"]));
        let name = if experiment.starts_with("pets") {
            "pets"
        } else {
            experiment
        };
        self.path(&format!(
            "results/{name}/runs/joint-seed0-quick.safetensors"
        ))
    }

    fn predict(&self, checkpoint: &Path, inputs: &[PathBuf], out: &str) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("predict")
            .arg("--checkpoint")
            .arg(checkpoint)
            .arg("--input")
            .args(inputs)
            .arg("--out")
            .arg(self.path(out));
        command
    }
}

fn first_image(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    files.remove(0)
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// The probabilities of each (file, task) sum to 1.
fn check_probabilities(rows: &[Vec<String>]) {
    let mut sums = std::collections::BTreeMap::<(String, String), f64>::new();
    for r in rows {
        *sums.entry((r[0].clone(), r[1].clone())).or_default() += r[3].parse::<f64>().unwrap();
    }
    assert!(!sums.is_empty());
    for (key, sum) in sums {
        assert!((sum - 1.0).abs() < 1e-5, "{key:?}: {sum}");
    }
}

/// `command` fails with one `error:` line containing `needle`, and leaves `out` empty.
fn refused(command: &mut Command, needle: &str, out: &Path) {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{command:?} succeeded");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error:") && lines[0].contains(needle),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{command:?} left {left:?}");
}

#[test]
fn refuge_predictions_are_masks_of_the_input_size_in_refuge_encoding() {
    let setup = Setup::new();
    let checkpoint = setup.checkpoint("refuge", |t| t);
    let image = first_image(&setup.path("data/refuge/REFUGE-Test400"));
    run(&mut setup.predict(&checkpoint, std::slice::from_ref(&image), "out"));
    let stem = image.file_stem().unwrap().to_string_lossy().into_owned();
    let mask = image_io::read_gray(&setup.path(&format!("out/{stem}_mask.png"))).unwrap();
    let photo = image_io::read_rgb(&image).unwrap();
    assert_eq!(mask.dim(), (photo.dim().1, photo.dim().2));
    assert!(mask.iter().all(|v| [0, 128, 255].contains(v)));
    assert!(mask.iter().any(|&v| v == 255), "some background");
    let overlay = image_io::read_rgb(&setup.path(&format!("out/{stem}_overlay.png"))).unwrap();
    assert_eq!(overlay.dim(), photo.dim());
    let rows = csv_rows(&setup.path("out/predictions.csv"));
    assert_eq!(rows.len(), 2, "glaucoma: two classes");
    check_probabilities(&rows);

    // The report draws the qualitative figure from the checkpoint and the data.
    run(Command::new(BIN)
        .arg("report")
        .arg("--config")
        .arg(setup.path("refuge.toml"))
        .arg("--data")
        .arg(setup.path("data"))
        .arg("--out")
        .arg(setup.path("results"))
        .args(["--quick", "--epochs", "1", "--methods", "joint"]));
    let figure = image::open(setup.path("results/refuge/figures/predictions.png")).unwrap();
    // Four test images; image, ground truth and Joint's prediction.
    assert!(
        figure.height() > 4 * 160 && figure.width() > 3 * 160,
        "{}×{}",
        figure.width(),
        figure.height()
    );
    let svg =
        std::fs::read_to_string(setup.path("results/refuge/figures/predictions.svg")).unwrap();
    assert_eq!(svg.matches("<image ").count(), 4 * 3);

    // Bad input: nothing written to `--out`.
    let bad = setup.path("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let text = bad.join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    refused(
        &mut setup.predict(&checkpoint, &[text], "bad-out"),
        "unsupported image format",
        &setup.path("bad-out"),
    );
    let empty = bad.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    refused(
        &mut setup.predict(&checkpoint, &[empty], "bad-out"),
        "no images in this folder",
        &setup.path("bad-out"),
    );
    let tiny = bad.join("tiny.png");
    image_io::write_rgb(&tiny, &ndarray::Array3::zeros((3, 16, 16))).unwrap();
    refused(
        &mut setup.predict(&checkpoint, &[image.clone(), tiny], "bad-out"),
        "too small for this network",
        &setup.path("bad-out"),
    );
    let broken = bad.join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff garbage").unwrap();
    refused(
        &mut setup.predict(&checkpoint, &[broken], "bad-out"),
        "broken.jpg",
        &setup.path("bad-out"),
    );
    let bytes = std::fs::read(&checkpoint).unwrap();
    let truncated = bad.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &mut setup.predict(&truncated, std::slice::from_ref(&image), "bad-out"),
        "not a safetensors checkpoint",
        &setup.path("bad-out"),
    );
    // Another architecture's tensors under this run's metadata.
    let (_, metadata) =
        mtcool_models::checkpoint::read_tensors(&checkpoint, &candle_core::Device::Cpu).unwrap();
    let organ = setup.checkpoint("organcmnist", |t| t);
    let (tensors, _) =
        mtcool_models::checkpoint::read_tensors(&organ, &candle_core::Device::Cpu).unwrap();
    let foreign = bad.join("foreign.safetensors");
    mtcool_models::checkpoint::write_tensors(&foreign, tensors, &metadata).unwrap();
    refused(
        &mut setup.predict(&foreign, &[image], "bad-out"),
        "foreign.safetensors: tensor `",
        &setup.path("bad-out"),
    );
}

#[test]
fn hrfav_pets_and_organ_models_predict_their_formats() {
    let setup = Setup::new();
    let hrf = setup.checkpoint("hrfav", |t| t);
    let images = setup.path("data/hrfav/images");
    let image = first_image(&images);
    let stem = image.file_stem().unwrap().to_string_lossy().into_owned();
    run(setup
        .predict(&hrf, std::slice::from_ref(&image), "hrf")
        .arg("--fov")
        .arg(setup.path("data/hrfav/mask")));
    let photo = image_io::read_rgb(&image).unwrap();
    let vessel = image_io::read_gray(&setup.path(&format!("hrf/{stem}_vessel.png"))).unwrap();
    assert_eq!(vessel.dim(), (photo.dim().1, photo.dim().2));
    assert!(vessel.iter().all(|v| [0, 255].contains(v)));
    let fov =
        image_io::read_gray(&setup.path(&format!("data/hrfav/mask/{stem}_mask.tif"))).unwrap();
    assert!(
        vessel.iter().zip(&fov).all(|(&v, &f)| f > 0 || v == 0),
        "no vessel outside the field of view"
    );
    let av = image_io::read_rgb(&setup.path(&format!("hrf/{stem}_av.png"))).unwrap();
    assert_eq!(av.dim(), photo.dim());
    assert!(setup.path(&format!("hrf/{stem}_overlay.png")).is_file());

    let pets = setup.checkpoint("pets", |t| {
        t.replace("folder = \"pets\"", "folder = \"pets-release\"")
    });
    let photo_path = first_image(&setup.path("data/pets-release/images"));
    let stem = photo_path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    run(&mut setup.predict(&pets, std::slice::from_ref(&photo_path), "pets"));
    let photo = image_io::read_rgb(&photo_path).unwrap();
    let trimap = image_io::read_gray(&setup.path(&format!("pets/{stem}_mask.png"))).unwrap();
    assert_eq!(trimap.dim(), (photo.dim().1, photo.dim().2));
    assert!(trimap.iter().all(|v| [1, 2].contains(v)));
    assert!(setup.path(&format!("pets/{stem}_overlay.png")).is_file());
    let rows = csv_rows(&setup.path("pets/predictions.csv"));
    assert!(rows.iter().all(|r| r[1] == "cls"), "{rows:?}");
    check_probabilities(&rows);

    let organ = setup.checkpoint("organcmnist", |t| t);
    let slices = setup.path("slices");
    std::fs::create_dir_all(&slices).unwrap();
    for k in 0..3u8 {
        let slice =
            ndarray::Array2::from_shape_fn((28, 28), |(y, x)| (y * 9 + x * k as usize) as u8);
        image_io::write_gray(&slices.join(format!("slice{k}.png")), &slice).unwrap();
    }
    run(&mut setup.predict(&organ, std::slice::from_ref(&slices), "organ"));
    let rows = csv_rows(&setup.path("organ/predictions.csv"));
    // Two tasks of 6 and 5 organs, three slices; classes are the organ codes.
    assert_eq!(rows.len(), 3 * (6 + 5));
    let classes: std::collections::BTreeSet<u32> =
        rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert_eq!(classes, (0..11).collect());
    check_probabilities(&rows);
    let wrong = slices.join("wide.png");
    image_io::write_gray(&wrong, &ndarray::Array2::zeros((28, 40))).unwrap();
    refused(
        &mut setup.predict(&organ, &[wrong], "organ-bad"),
        "this model reads 28×28 greyscale images",
        &setup.path("organ-bad"),
    );
}
