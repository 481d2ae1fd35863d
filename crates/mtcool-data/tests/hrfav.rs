//! HRF-AV reader on synthetic look-alikes: layout, targets, splits and corrupt files.
#![allow(clippy::unwrap_used)]

use mtcool_data::dense::IGNORE;
use mtcool_data::hrfav::{self, HrfAvOptions};
use mtcool_data::{image_io, DataError, DenseSet, Target};
use ndarray::{Array3, Axis};
use tempfile::TempDir;

const W: u32 = 192;
const H: u32 = 128;

fn synth(per_group: usize, seed: u64) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    hrfav::write_synthetic(dir.path(), per_group, W, H, seed).unwrap();
    dir
}

fn options(train: usize) -> HrfAvOptions {
    HrfAvOptions {
        train,
        ..HrfAvOptions::default()
    }
}

fn mask(set: &DenseSet, k: usize, classes: usize) -> &Array3<u8> {
    match &set.targets[k].1 {
        Target::Mask { maps, classes: c } => {
            assert_eq!(*c, classes);
            maps
        }
        other => panic!("target {k} is {other:?}"),
    }
}

fn message(err: DataError) -> String {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    msg
}

#[test]
fn scan_finds_the_layout() {
    let dir = synth(4, 1);
    let entries = hrfav::scan(dir.path(), &HrfAvOptions::default()).unwrap();
    assert_eq!(entries.len(), 12);
    assert_eq!(entries[0].stem, "01_dr");
    for group in ["h", "dr", "g"] {
        assert_eq!(entries.iter().filter(|e| e.group() == group).count(), 4);
    }
    for e in &entries {
        assert!(e
            .image
            .to_string_lossy()
            .ends_with(&format!("images/{}.jpg", e.stem)));
        assert!(e
            .av
            .to_string_lossy()
            .ends_with(&format!("av/{}.png", e.stem)));
        assert!(e
            .fov
            .to_string_lossy()
            .ends_with(&format!("mask/{}_mask.tif", e.stem)));
        let vessel = e.vessel.as_ref().unwrap();
        // manual1 (0/255) marks exactly the vessels of the A/V image.
        let manual = image_io::read_gray(vessel).unwrap();
        assert!(manual.iter().all(|&v| v == 0 || v == 255));
        let codes = hrfav::read_av(&e.av).unwrap();
        assert_eq!(codes.mapv(|c| c != 0), manual.mapv(|v| v != 0));
        assert!(codes.iter().any(|&c| c == hrfav::AV_CROSSING), "{}", e.stem);
        assert!(
            codes.iter().any(|&c| c == hrfav::AV_UNCERTAIN),
            "{}",
            e.stem
        );
    }
}

#[test]
fn load_targets_and_group_stratified_split() {
    let dir = synth(4, 2);
    let splits = hrfav::load(dir.path(), &options(6), 3).unwrap();
    assert_eq!(splits.train.images.dim(), (6, 3, H as usize, W as usize));
    assert_eq!(splits.test.images.dim(), (6, 3, H as usize, W as usize));
    assert_eq!(splits.val.len(), 0);
    for set in [&splits.train, &splits.test] {
        let names: Vec<&str> = set.targets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["vessel", "av"]);
        let vessel = mask(set, 0, 2);
        let av = mask(set, 1, 3);
        let valid = set.valid.as_ref().unwrap();
        assert!(vessel.iter().all(|&v| v < 2));
        assert!(valid.iter().all(|&v| v < 2));
        assert!(av.iter().all(|&v| v < 3 || v == IGNORE));
        for value in [0, 1, 2, IGNORE] {
            assert!(av.iter().any(|&v| v == value), "A/V value {value} missing");
        }
        assert_eq!(vessel, &av.mapv(|v| u8::from(v != 0)));
        // No vessel outside the field of view; the corners are outside.
        assert!(vessel.iter().zip(valid).all(|(&v, &f)| v == 0 || f == 1));
        assert_eq!(valid[[0, 0, 0]], 0);
        assert_eq!(valid[[0, H as usize / 2, W as usize / 2]], 1);
    }
    // Two training images per group: identify samples by their pixels.
    let entries = hrfav::scan(dir.path(), &HrfAvOptions::default()).unwrap();
    let originals: Vec<_> = entries
        .iter()
        .map(|e| (e.group().to_string(), image_io::read_rgb(&e.image).unwrap()))
        .collect();
    for group in ["h", "dr", "g"] {
        let n = (0..6)
            .filter(|&i| {
                let img = splits.train.images.index_axis(Axis(0), i);
                originals.iter().any(|(g, o)| g == group && img == o.view())
            })
            .count();
        assert_eq!(n, 2, "group {group}");
    }
}

#[test]
fn seed_decides_the_split() {
    let dir = synth(3, 4);
    let a = hrfav::load(dir.path(), &options(3), 1).unwrap();
    let b = hrfav::load(dir.path(), &options(3), 1).unwrap();
    assert_eq!(a, b);
    let differs = (2..8).any(|seed| {
        hrfav::load(dir.path(), &options(3), seed)
            .unwrap()
            .train
            .images
            != a.train.images
    });
    assert!(differs);
    // A remainder is allowed; more than there are images is not.
    assert_eq!(
        hrfav::load(dir.path(), &options(4), 1).unwrap().train.len(),
        4
    );
    let err = hrfav::load(dir.path(), &options(10), 1).unwrap_err();
    assert!(matches!(err, DataError::Split(_)), "{err}");
}

#[test]
fn synthetic_files_are_deterministic() {
    let a = synth(1, 5);
    let b = synth(1, 5);
    for rel in [
        "images/01_g.jpg",
        "av/01_g.png",
        "manual1/01_g.tif",
        "mask/01_g_mask.tif",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(rel)).unwrap(),
            std::fs::read(b.path().join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn av_colours_decode_with_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let mut img = Array3::<u8>::zeros((3, 1, 5));
    let colours = [
        [20, 10, 5],
        [230, 20, 10],
        [10, 30, 220],
        [30, 240, 20],
        [240, 235, 250],
    ];
    for (x, c) in colours.iter().enumerate() {
        for ch in 0..3 {
            img[[ch, 0, x]] = c[ch];
        }
    }
    image_io::write_rgb(&path, &img).unwrap();
    let codes = hrfav::read_av(&path).unwrap();
    assert_eq!(codes.row(0).to_vec(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn missing_dataset_gives_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let msg = message(hrfav::scan(dir.path(), &HrfAvOptions::default()).unwrap_err());
    assert!(
        msg.contains("www5.cs.fau.de") && msg.contains("Hemelings"),
        "{msg}"
    );
}

#[test]
fn unknown_av_colour_names_file_pixel_and_colour() {
    let dir = synth(2, 6);
    let path = dir.path().join("av/02_h.png");
    let mut img = image_io::read_rgb(&path).unwrap();
    img[[0, 7, 9]] = 255;
    img[[1, 7, 9]] = 0;
    img[[2, 7, 9]] = 255;
    image_io::write_rgb(&path, &img).unwrap();
    let msg = message(hrfav::load(dir.path(), &options(3), 0).unwrap_err());
    assert!(msg.contains("02_h.png"), "{msg}");
    assert!(
        msg.contains("(9, 7)") && msg.contains("(255, 0, 255)"),
        "{msg}"
    );
}

#[test]
fn missing_fov_mask_names_the_file() {
    let dir = synth(2, 7);
    std::fs::remove_file(dir.path().join("mask/01_dr_mask.tif")).unwrap();
    let msg = message(hrfav::load(dir.path(), &options(3), 0).unwrap_err());
    assert!(msg.contains("01_dr_mask.tif"), "{msg}");
}

#[test]
fn manual1_is_optional_but_checked_for_size() {
    let dir = synth(2, 8);
    std::fs::remove_file(dir.path().join("manual1/01_h.tif")).unwrap();
    let entries = hrfav::scan(dir.path(), &HrfAvOptions::default()).unwrap();
    assert!(entries
        .iter()
        .any(|e| e.stem == "01_h" && e.vessel.is_none()));
    hrfav::load(dir.path(), &options(3), 0).unwrap();
    let small = ndarray::Array2::<u8>::zeros((10, 10));
    image_io::write_gray(&dir.path().join("manual1/02_g.tif"), &small).unwrap();
    let msg = message(hrfav::load(dir.path(), &options(3), 0).unwrap_err());
    assert!(
        msg.contains("02_g.tif") && msg.contains("02_g.jpg"),
        "{msg}"
    );
}

#[test]
fn custom_av_folder() {
    let dir = synth(1, 9);
    std::fs::rename(dir.path().join("av"), dir.path().join("AV_GT")).unwrap();
    let opts = HrfAvOptions {
        train: 3,
        av_folder: "AV_GT".into(),
    };
    assert_eq!(hrfav::load(dir.path(), &opts, 0).unwrap().train.len(), 3);
    let msg = message(hrfav::scan(dir.path(), &HrfAvOptions::default()).unwrap_err());
    assert!(msg.contains("01_dr.png"), "{msg}");
}
