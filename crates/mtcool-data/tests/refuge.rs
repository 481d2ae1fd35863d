//! REFUGE 2018 reader on synthetic look-alikes: layout, splits, crops and corrupt files.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use mtcool_data::image_io;
use mtcool_data::refuge::{self, RefugeOptions};
use mtcool_data::transforms::centroid;
use mtcool_data::{DataError, DenseSet, Target};
use ndarray::Array2;
use tempfile::TempDir;

const SIZE: u32 = 160;

fn synth(per_release: usize, seed: u64) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    refuge::write_synthetic(dir.path(), per_release, SIZE, seed).unwrap();
    dir
}

fn options(train: usize, val: usize, test: usize) -> RefugeOptions {
    RefugeOptions {
        train,
        val,
        test,
        crop_size: 96,
        output_size: 64,
    }
}

fn labels(set: &DenseSet) -> Vec<u8> {
    match &set.targets[1].1 {
        Target::Class { labels, classes } => {
            assert_eq!(*classes, 2);
            labels.to_vec()
        }
        other => panic!("cls target is {other:?}"),
    }
}

fn maps(set: &DenseSet) -> &ndarray::Array3<u8> {
    match &set.targets[0].1 {
        Target::Mask { maps, classes } => {
            assert_eq!(*classes, 3);
            maps
        }
        other => panic!("seg target is {other:?}"),
    }
}

fn message(err: DataError) -> String {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    msg
}

fn write_sheet(path: &Path, headers: &[&str], rows: &[(&str, f64)]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, (name, v)) in rows.iter().enumerate() {
        sheet.write_string(r as u32 + 1, 0, *name).unwrap();
        sheet.write_number(r as u32 + 1, 1, *v).unwrap();
    }
    book.save(path).unwrap();
}

#[test]
fn scan_finds_every_release() {
    let dir = synth(8, 1);
    let entries = refuge::scan(dir.path()).unwrap();
    assert_eq!(entries.len(), 24);
    assert_eq!(entries.iter().filter(|e| e.glaucoma).count(), 6);
    assert!(entries[0].image.to_string_lossy().contains("Training400"));
    assert!(entries[23]
        .image
        .to_string_lossy()
        .contains("REFUGE-Test400"));
    for e in &entries {
        let stem = e.image.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(e.mask.file_stem().unwrap().to_string_lossy(), stem);
        assert_eq!(e.mask.extension().unwrap(), "bmp");
        if stem.starts_with('g') {
            assert!(e.glaucoma);
        }
        if stem.starts_with('n') {
            assert!(!e.glaucoma);
        }
    }
    // Same seed, same files.
    let again = synth(8, 1);
    for e in &entries {
        let rel = e.image.strip_prefix(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(&e.image).unwrap(),
            std::fs::read(again.path().join(rel)).unwrap()
        );
    }
}

#[test]
fn load_shapes_classes_and_stratification() {
    let dir = synth(8, 2);
    let splits = refuge::load(dir.path(), &options(16, 0, 8), 5).unwrap();
    assert_eq!(splits.train.images.dim(), (16, 3, 64, 64));
    assert_eq!(splits.test.images.dim(), (8, 3, 64, 64));
    assert_eq!(splits.val.len(), 0);
    for set in [&splits.train, &splits.test] {
        let names: Vec<&str> = set.targets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["seg", "cls"]);
        assert!(set.valid.is_none());
        let m = maps(set);
        assert!(m.iter().all(|&v| v < 3));
        for class in 0..3 {
            assert!(m.iter().any(|&v| v == class), "class {class} missing");
        }
        assert!(labels(set).iter().all(|&l| l < 2));
    }
    // 6 of 24 glaucomatous: 4 of 16 and 2 of 8.
    let pos_train = labels(&splits.train).iter().filter(|&&l| l == 1).count();
    let pos_test = labels(&splits.test).iter().filter(|&&l| l == 1).count();
    assert_eq!((pos_train, pos_test), (4, 2));

    // Uneven sizes: fractions as equal as integers allow.
    let splits = refuge::load(dir.path(), &options(13, 3, 7), 5).unwrap();
    let count = |s: &DenseSet| labels(s).iter().filter(|&&l| l == 1).count() as f64;
    assert_eq!(splits.val.len(), 3);
    for (set, n) in [
        (&splits.train, 13.0),
        (&splits.test, 7.0),
        (&splits.val, 3.0),
    ] {
        assert!(
            (count(set) - n * 0.25).abs() <= 1.0,
            "{} of {n}",
            count(set)
        );
    }
}

#[test]
fn seed_decides_the_split() {
    let dir = synth(8, 3);
    let opts = options(12, 0, 6);
    let a = refuge::load(dir.path(), &opts, 1).unwrap();
    let b = refuge::load(dir.path(), &opts, 1).unwrap();
    assert_eq!(a, b);
    let c = refuge::load(dir.path(), &opts, 2).unwrap();
    assert_ne!(a.train.images, c.train.images);
}

#[test]
fn crops_are_centred_on_the_disc() {
    let dir = synth(8, 4);
    let splits = refuge::load(dir.path(), &options(16, 0, 8), 9).unwrap();
    for (set, tolerance) in [(&splits.train, 1.5), (&splits.test, 3.0)] {
        let m = maps(set);
        for i in 0..set.len() {
            let map = m.index_axis(ndarray::Axis(0), i).to_owned();
            let (cy, cx) = centroid(&map, |v| v == 1 || v == 2).unwrap();
            assert!(
                (cy - 31.5).abs() <= tolerance && (cx - 31.5).abs() <= tolerance,
                "sample {i}: disc centroid ({cy:.1}, {cx:.1})"
            );
        }
    }
}

#[test]
fn brightness_heuristic_finds_the_disc() {
    let dir = synth(10, 5);
    for e in refuge::scan(dir.path()).unwrap() {
        let image = image_io::read_rgb(&e.image).unwrap();
        let mask = refuge::read_mask(&e.mask).unwrap();
        let (ty, tx) = centroid(&mask, |v| v == 1 || v == 2).unwrap();
        let (y, x) = refuge::locate_disc(&image);
        let d = ((y - ty).powi(2) + (x - tx).powi(2)).sqrt();
        assert!(d <= 3.0, "{}: {d:.1} px off", e.image.display());
    }
}

#[test]
fn default_options_and_too_many_images() {
    let o = RefugeOptions::default();
    assert_eq!(
        (o.train, o.val, o.test, o.crop_size, o.output_size),
        (800, 0, 400, 512, 256)
    );
    let dir = synth(4, 6);
    let err = refuge::load(dir.path(), &options(10, 0, 3), 0).unwrap_err();
    assert!(matches!(err, DataError::Split(_)), "{err}");
}

#[test]
fn missing_dataset_gives_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let msg = message(refuge::scan(dir.path()).unwrap_err());
    assert!(msg.contains("refuge.grand-challenge.org"), "{msg}");
}

#[test]
fn nested_test_folder_and_csv_labels_are_accepted() {
    let dir = synth(4, 7);
    let before = refuge::scan(dir.path()).unwrap();
    let test_dir = dir.path().join("REFUGE-Test400");
    std::fs::create_dir_all(test_dir.join("Test400")).unwrap();
    for e in std::fs::read_dir(&test_dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::rename(&p, test_dir.join("Test400").join(p.file_name().unwrap())).unwrap();
        }
    }
    // Validation labels as csv instead of xlsx.
    let gt = dir.path().join("REFUGE-Validation400-GT");
    std::fs::remove_file(gt.join("Glaucoma_label.xlsx")).unwrap();
    let mut csv = String::from("ImgName,Glaucoma Label\n");
    for e in before
        .iter()
        .filter(|e| e.image.to_string_lossy().contains("Validation"))
    {
        let name = e.image.file_name().unwrap().to_string_lossy();
        csv.push_str(&format!("{name},{}\n", u8::from(e.glaucoma)));
    }
    std::fs::write(gt.join("labels.csv"), csv).unwrap();
    let after = refuge::scan(dir.path()).unwrap();
    assert_eq!(after.len(), before.len());
    let flags = |v: &[refuge::RefugeEntry]| v.iter().map(|e| e.glaucoma).collect::<Vec<_>>();
    assert_eq!(flags(&after), flags(&before));
}

#[test]
fn missing_mask_names_the_file() {
    let dir = synth(4, 8);
    let mask = dir
        .path()
        .join("Annotation-Training400/Disc_Cup_Masks/Glaucoma/g0001.bmp");
    std::fs::remove_file(&mask).unwrap();
    let msg = message(refuge::scan(dir.path()).unwrap_err());
    assert!(msg.contains("g0001.bmp"), "{msg}");
}

#[test]
fn unknown_mask_value_names_file_and_value() {
    let dir = synth(4, 9);
    let mask = dir
        .path()
        .join("REFUGE-Validation400-GT/Disc_Cup_Masks/V0002.bmp");
    let mut raw = image_io::read_gray(&mask).unwrap();
    raw[[5, 6]] = 77;
    image_io::write_gray(&mask, &raw).unwrap();
    let msg = message(refuge::load(dir.path(), &options(8, 0, 4), 0).unwrap_err());
    assert!(msg.contains("V0002.bmp") && msg.contains("77"), "{msg}");
}

#[test]
fn mask_size_mismatch_names_both_files() {
    let dir = synth(4, 10);
    let mask = dir.path().join("REFUGE-Test-GT/Disc_Cup_Masks");
    let file = ["G", "N"]
        .iter()
        .map(|f| mask.join(f).join("T0003.bmp"))
        .find(|p| p.is_file())
        .unwrap();
    image_io::write_gray(&file, &Array2::from_elem((100, 120), 255u8)).unwrap();
    let msg = message(refuge::load(dir.path(), &options(8, 0, 4), 0).unwrap_err());
    assert!(
        msg.contains("T0003.bmp") && msg.contains("T0003.jpg"),
        "{msg}"
    );
}

#[test]
fn truncated_image_names_the_file() {
    let dir = synth(4, 11);
    let image = dir.path().join("Training400/Non-Glaucoma/n0002.jpg");
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() / 3]).unwrap();
    let msg = message(refuge::load(dir.path(), &options(8, 0, 4), 0).unwrap_err());
    assert!(msg.contains("n0002.jpg"), "{msg}");
}

#[test]
fn sheet_disagreeing_with_folder_names_the_image() {
    let dir = synth(4, 12);
    let masks = dir.path().join("REFUGE-Test-GT/Disc_Cup_Masks");
    let glaucoma = masks.join("G/T0001.bmp").is_file();
    let mut rows = vec![("T0001.jpg", if glaucoma { 0.0 } else { 1.0 })];
    for k in 2..=4 {
        let name = format!("T{k:04}");
        let g = masks.join(format!("G/{name}.bmp")).is_file();
        rows.push((
            Box::leak(format!("{name}.jpg").into_boxed_str()),
            f64::from(u8::from(g)),
        ));
    }
    let sheet = dir
        .path()
        .join("REFUGE-Test-GT/Glaucoma_label_and_Fovea_location.xlsx");
    write_sheet(&sheet, &["ImgName", "Glaucoma Label"], &rows);
    let msg = message(refuge::scan(dir.path()).unwrap_err());
    assert!(msg.contains("T0001"), "{msg}");
    assert!(
        msg.contains("Glaucoma_label_and_Fovea_location.xlsx"),
        "{msg}"
    );
}

#[test]
fn sheet_without_header_names_the_sheet() {
    let dir = synth(4, 13);
    let sheet = dir
        .path()
        .join("REFUGE-Validation400-GT/Glaucoma_label.xlsx");
    write_sheet(&sheet, &["Name", "Glaucoma Label"], &[("V0001.jpg", 1.0)]);
    let msg = message(refuge::scan(dir.path()).unwrap_err());
    assert!(
        msg.contains("Glaucoma_label.xlsx") && msg.contains("ImgName"),
        "{msg}"
    );
}
