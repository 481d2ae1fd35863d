//! The original Oxford-IIIT Pet release reader on synthetic files and corrupt variants of them.
#![allow(clippy::unwrap_used)]

mod common;
use common::{boxes, mask, species};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mtcool_data::dense::IGNORE;
use mtcool_data::pets_release::{self, Border, ReleaseOptions, ReleaseSplit};
use mtcool_data::{DenseSet, DenseSplits, Target};
use ndarray::Array2;

const COUNT: usize = 20;
const SIZE: usize = 32;

fn options(border: Border) -> ReleaseOptions {
    ReleaseOptions {
        size: SIZE,
        border,
        ..Default::default()
    }
}

fn synthetic(count: usize, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pets_release::write_synthetic(dir.path(), count, seed).unwrap();
    dir
}

fn sets(splits: &DenseSplits) -> [&DenseSet; 3] {
    [&splits.train, &splits.val, &splits.test]
}

fn names(split: &ReleaseSplit) -> [Vec<String>; 3] {
    [&split.train, &split.val, &split.test].map(|s| s.iter().map(|e| e.name.clone()).collect())
}

/// Species (0 cat, 1 dog) by name, from `annotations/list.txt`.
fn listed_species(root: &Path) -> HashMap<String, u8> {
    let text = std::fs::read_to_string(root.join("annotations/list.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[2].parse::<u8>().unwrap() - 1)
        })
        .collect()
}

/// Names of the images that have a head-box xml, sorted.
fn with_xml(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.join("annotations/xmls"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn synthetic_layout_looks_like_the_release() {
    let dir = synthetic(COUNT, 3);
    let root = dir.path();
    assert!(pets_release::is_release_layout(root));
    let list = std::fs::read_to_string(root.join("annotations/list.txt")).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 6 + COUNT);
    assert!(lines[..6].iter().all(|l| l.starts_with('#')));
    for line in &lines[6..] {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "{line}");
        let cat = f[0].chars().next().unwrap().is_uppercase();
        assert_eq!(f[2], if cat { "1" } else { "2" }, "{line}");
        let class: u32 = f[1].parse().unwrap();
        assert!((1..=37).contains(&class), "{line}");
        assert!(root.join(format!("images/{}.jpg", f[0])).is_file());
        assert!(root
            .join(format!("annotations/trimaps/{}.png", f[0]))
            .is_file());
    }
    let trainval = std::fs::read_to_string(root.join("annotations/trainval.txt")).unwrap();
    let test = std::fs::read_to_string(root.join("annotations/test.txt")).unwrap();
    assert_eq!(trainval.lines().count() + test.lines().count(), COUNT);
    // About a fifth without a head box.
    assert_eq!(with_xml(root).len(), COUNT - COUNT / 5);
    // Images are not square and vary in size.
    let mut sizes = std::collections::HashSet::new();
    for line in &lines[6..] {
        let name = line.split_whitespace().next().unwrap();
        let (w, h) =
            mtcool_data::image_io::dimensions(&root.join(format!("images/{name}.jpg"))).unwrap();
        assert_ne!(w, h);
        assert!((64..=112).contains(&w) && (64..=112).contains(&h));
        sizes.insert((w, h));
    }
    assert!(sizes.len() > 1);
    // Deterministic from the seed.
    let again = synthetic(COUNT, 3);
    for file in ["annotations/list.txt", "annotations/trainval.txt"] {
        assert_eq!(
            std::fs::read(root.join(file)).unwrap(),
            std::fs::read(again.path().join(file)).unwrap()
        );
    }
    let first = lines[6].split_whitespace().next().unwrap();
    let image = format!("images/{first}.jpg");
    assert_eq!(
        std::fs::read(root.join(&image)).unwrap(),
        std::fs::read(again.path().join(&image)).unwrap()
    );
}

#[test]
fn is_release_layout_needs_list_and_images() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!pets_release::is_release_layout(dir.path()));
    std::fs::create_dir_all(dir.path().join("annotations")).unwrap();
    std::fs::write(dir.path().join("annotations/list.txt"), "#\n").unwrap();
    assert!(!pets_release::is_release_layout(dir.path()));
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    assert!(pets_release::is_release_layout(dir.path()));
}

#[test]
fn round_trip() {
    let dir = synthetic(COUNT, 5);
    let root = dir.path();
    let splits = pets_release::load(root, &options(Border::Ignore), 1, None).unwrap();
    let plan = pets_release::split(root, &options(Border::Ignore), 1, None).unwrap();
    let pooled = with_xml(root);
    let total: usize = sets(&splits).iter().map(|s| s.len()).sum();
    assert_eq!(total, pooled.len());
    let mut planned: Vec<String> = names(&plan).concat();
    planned.sort();
    assert_eq!(planned, pooled);
    // 60 / 20 / 20 per species, as nearly as integers allow.
    assert!(splits.train.len() >= splits.val.len() && splits.train.len() >= splits.test.len());
    assert!(!splits.val.is_empty() && !splits.test.is_empty());

    let listed = listed_species(root);
    let mut border_seen = false;
    for (set, entries) in sets(&splits)
        .into_iter()
        .zip([&plan.train, &plan.val, &plan.test])
    {
        let n = set.len();
        assert_eq!(set.images.dim(), (n, 3, SIZE, SIZE));
        assert_eq!(mask(set).dim(), (n, SIZE, SIZE));
        assert_eq!(boxes(set).dim(), (n, 4));
        let names: Vec<&str> = set.targets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["seg", "cls", "box", "rec"]);
        assert_eq!(set.targets[3].1, Target::Reconstruction);
        assert!(mask(set).iter().all(|&v| v == 0 || v == 1 || v == IGNORE));
        border_seen |= mask(set).iter().any(|&v| v == IGNORE);
        for (i, v) in mask(set).outer_iter().zip(0..) {
            // every sample shows some pet and some background
            assert!(i.iter().any(|&p| p == 1), "sample {v}");
            assert!(i.iter().any(|&p| p == 0), "sample {v}");
        }
        for row in boxes(set).outer_iter() {
            assert!(row.iter().all(|v| (0.0..=1.0).contains(v)), "{row}");
            assert!(row[2] > row[0] && row[3] > row[1], "{row}");
        }
        let expected: Vec<u8> = entries.iter().map(|e| listed[&e.name]).collect();
        assert_eq!(species(set), expected);
        assert_eq!(
            entries.iter().map(|e| e.species).collect::<Vec<_>>(),
            expected
        );
    }
    assert!(border_seen);

    // Border as pet: binary masks, with more pet than under `Ignore`.
    let pet = pets_release::load(root, &options(Border::Pet), 1, None).unwrap();
    for (a, b) in sets(&pet).into_iter().zip(sets(&splits)) {
        assert!(mask(a).iter().all(|&v| v == 0 || v == 1));
        assert_eq!(a.images, b.images);
        assert_eq!(boxes(a), boxes(b));
        for (&p, &q) in mask(a).iter().zip(mask(b).iter()) {
            if q != IGNORE {
                assert_eq!(p, q);
            }
        }
    }
    let background = pets_release::load(root, &options(Border::Background), 1, None).unwrap();
    assert!(mask(&background.train).iter().all(|&v| v == 0 || v == 1));
    assert!(
        mask(&background.train).iter().filter(|&&v| v == 1).count()
            < mask(&pet.train).iter().filter(|&&v| v == 1).count()
    );
}

#[test]
fn splits_follow_the_seed_and_limit() {
    let dir = synthetic(COUNT, 6);
    let root = dir.path();
    let opts = options(Border::Ignore);
    let a = pets_release::split(root, &opts, 11, None).unwrap();
    let b = pets_release::split(root, &opts, 11, None).unwrap();
    let c = pets_release::split(root, &opts, 12, None).unwrap();
    assert_eq!(a, b);
    assert_ne!(names(&a), names(&c));
    let la = pets_release::load(root, &opts, 11, None).unwrap();
    let lb = pets_release::load(root, &opts, 11, None).unwrap();
    assert_eq!(la, lb);

    let limited = pets_release::split(root, &opts, 11, Some(2)).unwrap();
    for (full, cut) in names(&a).iter().zip(names(&limited).iter()) {
        assert_eq!(cut.len(), full.len().min(2));
        assert_eq!(&full[..cut.len()], &cut[..]);
    }
    let loaded = pets_release::load(root, &opts, 11, Some(2)).unwrap();
    assert!(sets(&loaded).iter().all(|s| s.len() <= 2));

    // All to training.
    let all = ReleaseOptions {
        fractions: [1.0, 0.0, 0.0],
        ..opts.clone()
    };
    let only = pets_release::split(root, &all, 1, None).unwrap();
    assert_eq!(only.train.len(), with_xml(root).len());
    assert!(only.val.is_empty() && only.test.is_empty());
    let bad = ReleaseOptions {
        fractions: [0.0, 0.0, 0.0],
        ..opts
    };
    assert!(pets_release::split(root, &bad, 1, None).is_err());
}

#[test]
fn options_parse_from_toml_like_serde() {
    let opts: ReleaseOptions =
        serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
            _,
            serde::de::value::Error,
        >::new([("border", "background")].into_iter()))
        .unwrap();
    assert_eq!(opts.border, Border::Background);
    assert_eq!(opts.size, 256);
    assert_eq!(opts.fractions, [0.6, 0.2, 0.2]);
}

#[test]
fn greyscale_and_png_data_under_jpg_names_are_read_as_rgb() {
    let dir = synthetic(10, 8);
    let root = dir.path();
    let pooled = with_xml(root);
    let grey = root.join(format!("images/{}.jpg", pooled[0]));
    let rgb = mtcool_data::image_io::read_rgb(&grey).unwrap();
    mtcool_data::image_io::write_gray(&grey, &rgb.index_axis(ndarray::Axis(0), 1).to_owned())
        .unwrap();
    let png_named_jpg = root.join(format!("images/{}.jpg", pooled[1]));
    let rgb = mtcool_data::image_io::read_rgb(&png_named_jpg).unwrap();
    let png = root.join("tmp.png");
    mtcool_data::image_io::write_rgb(&png, &rgb).unwrap();
    std::fs::rename(&png, &png_named_jpg).unwrap();
    let splits = pets_release::load(root, &options(Border::Ignore), 0, None).unwrap();
    let total: usize = sets(&splits).iter().map(|s| s.len()).sum();
    assert_eq!(total, pooled.len());
}

// ---- corrupt variants ------------------------------------------------------------------

/// A fresh synthetic release and the name of an image that is in the pool (has an xml).
fn corruptible() -> (tempfile::TempDir, String) {
    let dir = synthetic(10, 9);
    let name = with_xml(dir.path()).remove(0);
    (dir, name)
}

/// The message of the error that loading `root` gives; it must name `file`.
fn failure_naming(root: &Path, file: &Path) -> String {
    let err = pets_release::load(root, &options(Border::Ignore), 0, None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&file.display().to_string()),
        "error does not name {}: {msg}",
        file.display()
    );
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    msg
}

fn path_of(root: &Path, kind: &str, name: &str) -> PathBuf {
    match kind {
        "image" => root.join(format!("images/{name}.jpg")),
        "trimap" => root.join(format!("annotations/trimaps/{name}.png")),
        "xml" => root.join(format!("annotations/xmls/{name}.xml")),
        _ => unreachable!(),
    }
}

#[test]
fn trimap_with_a_foreign_value_is_an_error() {
    let (dir, name) = corruptible();
    let path = path_of(dir.path(), "trimap", &name);
    let mut map = mtcool_data::image_io::read_gray(&path).unwrap();
    map[[3, 4]] = 7;
    mtcool_data::image_io::write_gray(&path, &map).unwrap();
    let msg = failure_naming(dir.path(), &path);
    assert!(msg.contains("value 7"), "{msg}");
}

#[test]
fn trimap_of_another_size_is_an_error() {
    let (dir, name) = corruptible();
    let path = path_of(dir.path(), "trimap", &name);
    mtcool_data::image_io::write_gray(&path, &Array2::from_elem((20, 30), 2u8)).unwrap();
    let msg = failure_naming(dir.path(), &path);
    assert!(msg.contains("30×20"), "{msg}");
}

#[test]
fn truncated_or_garbage_jpeg_is_an_error() {
    let (dir, name) = corruptible();
    let path = path_of(dir.path(), "image", &name);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    failure_naming(dir.path(), &path);
    std::fs::write(&path, b"this is not an image at all").unwrap();
    failure_naming(dir.path(), &path);
}

#[test]
fn malformed_list_line_is_an_error() {
    let (dir, _) = corruptible();
    let list = dir.path().join("annotations/list.txt");
    let mut text = std::fs::read_to_string(&list).unwrap();
    text.push_str("Bengal_99 6 cat 2\n");
    std::fs::write(&list, &text).unwrap();
    let msg = failure_naming(dir.path(), &list);
    assert!(
        msg.contains(&format!("line {}", text.lines().count())),
        "{msg}"
    );
    // Too few fields.
    let mut text = std::fs::read_to_string(&list)
        .unwrap()
        .replace("Bengal_99 6 cat 2\n", "");
    text.push_str("Bengal_99 6\n");
    std::fs::write(&list, &text).unwrap();
    failure_naming(dir.path(), &list);
}

#[test]
fn inverted_head_box_is_an_error() {
    let (dir, name) = corruptible();
    let path = path_of(dir.path(), "xml", &name);
    let text = std::fs::read_to_string(&path).unwrap();
    let xmin = text
        .split("<xmin>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let xmax = text
        .split("<xmax>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let swapped = text
        .replace(&format!("<xmin>{xmin}<"), "<xmin>X<")
        .replace(&format!("<xmax>{xmax}<"), &format!("<xmax>{xmin}<"))
        .replace("<xmin>X<", &format!("<xmin>{xmax}<"));
    std::fs::write(&path, swapped).unwrap();
    let msg = failure_naming(dir.path(), &path);
    assert!(msg.contains("inverted"), "{msg}");
}

#[test]
fn broken_xml_is_an_error() {
    let (dir, name) = corruptible();
    let path = path_of(dir.path(), "xml", &name);
    std::fs::write(&path, "<annotation><object><bndbox><xmin>1</xmin>").unwrap();
    failure_naming(dir.path(), &path);
}

#[test]
fn listed_image_missing_is_an_error() {
    let (dir, name) = corruptible();
    let path = path_of(dir.path(), "image", &name);
    std::fs::remove_file(&path).unwrap();
    let msg = failure_naming(dir.path(), &path);
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn images_without_xml_are_skipped_and_an_empty_pool_is_an_error() {
    let (dir, _) = corruptible();
    let root = dir.path();
    std::fs::remove_dir_all(root.join("annotations/xmls")).unwrap();
    let list = root.join("annotations/list.txt");
    let msg = failure_naming(root, &list);
    assert!(msg.contains("no listed image has a head box"), "{msg}");
}

#[test]
fn missing_list_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("annotations/list.txt");
    failure_naming(dir.path(), &list);
}
