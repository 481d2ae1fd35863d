//! Oxford-IIIT Pet as its original release (www.robots.ox.ac.uk/~vgg/data/pets/).
//!
//! The two archives unpack into one root folder:
//!
//! - `images/<Name>.jpg`: RGB JPEG of any size (a few files of the release are greyscale,
//!   CMYK or PNG data under a `.jpg` name; all are converted to RGB);
//! - `annotations/trimaps/<Name>.png`: 8-bit trimaps, 1 = pet, 2 = background, 3 = border;
//! - `annotations/xmls/<Name>.xml`: PASCAL-VOC head box (`annotation/object/bndbox/{xmin,
//!   ymin, xmax, ymax}`, pixels) and image size (`annotation/size/{width, height}`), for only
//!   some of the images;
//! - `annotations/list.txt`: `#` comment lines, then `Name CLASS-ID SPECIES BREED-ID` lines
//!   with SPECIES 1 = cat, 2 = dog.
//!
//! [`load`] pools the listed images that have a head box and a trimap (3,686 in the release,
//! as in the UCL coursework files), splits them with a seed and returns the coursework's
//! tasks in the order of its reader (`pets`, feature `hdf5`): `seg` (pet / background),
//! `cls` (species), `box` (head box `[x0, y0, x1, y1]` as fractions of the image size) and
//! `rec` (reconstruction).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dense::{DenseSet, DenseSplits, Target, IGNORE};
use crate::error::{DataError, Result};
use crate::image_io;
use crate::pets_draw::synthetic_sample;
use crate::transforms::{resize_image, resize_labels};

const HINT: &str = "the Oxford-IIIT Pet release (images.tar.gz and annotations.tar.gz from \
    www.robots.ox.ac.uk/~vgg/data/pets/), unpacked into this folder";

/// The image list of the release, relative to its root.
pub const LIST: &str = "annotations/list.txt";

/// How far (as a fraction of the image size) a head box may stick out of the image before it
/// is rejected; boxes within this margin are clamped to `[0, 1]`.
const BOX_SLACK: f64 = 0.02;

/// Trimap value of a pet pixel.
pub const TRIMAP_PET: u8 = 1;
/// Trimap value of a background pixel.
pub const TRIMAP_BACKGROUND: u8 = 2;
/// Trimap value of a pixel on the pet's border.
pub const TRIMAP_BORDER: u8 = 3;

/// What the trimaps' border pixels (value 3) become in the `seg` masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Border {
    /// [`IGNORE`]: neither loss nor metrics count them (default).
    #[default]
    Ignore,
    /// Pet (1).
    Pet,
    /// Background (0).
    Background,
}

impl Border {
    /// The mask label of a border pixel.
    pub fn label(self) -> u8 {
        match self {
            Border::Ignore => IGNORE,
            Border::Pet => 1,
            Border::Background => 0,
        }
    }
}

/// Output size, split fractions and border handling of [`load`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReleaseOptions {
    /// Side of the square images and masks after resizing (default 256, the size of the
    /// coursework files).
    pub size: usize,
    /// Shares of the pool for train, validation and test (default `[0.6, 0.2, 0.2]`);
    /// normalised by their sum.
    pub fractions: [f64; 3],
    /// What trimap border pixels become (default [`Border::Ignore`]).
    pub border: Border,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        ReleaseOptions {
            size: 256,
            fractions: [0.6, 0.2, 0.2],
            border: Border::Ignore,
        }
    }
}

/// One image of `annotations/list.txt` with the paths of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Image name without extension, e.g. `Abyssinian_12`.
    pub name: String,
    /// Breed over both species, 1..=37 in the release.
    pub class_id: u32,
    /// Species: 0 = cat, 1 = dog (the list's SPECIES minus one).
    pub species: u8,
    /// Breed within the species.
    pub breed_id: u32,
    /// `images/<name>.jpg`.
    pub image: PathBuf,
    /// `annotations/trimaps/<name>.png`.
    pub trimap: PathBuf,
    /// `annotations/xmls/<name>.xml`.
    pub xml: PathBuf,
}

/// The entries of each split drawn by [`split`], in sample order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSplit {
    /// Training entries.
    pub train: Vec<ReleaseEntry>,
    /// Validation entries.
    pub val: Vec<ReleaseEntry>,
    /// Test entries.
    pub test: Vec<ReleaseEntry>,
}

/// A head box read from an xml file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadBox {
    /// `[xmin, ymin, xmax, ymax]` in pixels, as written in the file.
    pub pixels: [f64; 4],
    /// `(width, height)` from `annotation/size`, when present.
    pub size: Option<(u32, u32)>,
}

/// True when `root` looks like the release: `annotations/list.txt` and `images/` exist.
pub fn is_release_layout(root: &Path) -> bool {
    root.join(LIST).is_file() && root.join("images").is_dir()
}

/// Reads a `list.txt`-style file (also `trainval.txt`, `test.txt`): `#` lines and blank lines
/// are skipped, every other line is `Name CLASS-ID SPECIES BREED-ID`. Paths of the returned
/// entries are relative to `root`.
pub fn read_list(path: &Path, root: &Path) -> Result<Vec<ReleaseEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |problem: &str| {
            DataError::format(
                path,
                format!(
                    "line {}: {problem} in `{line}` (expected `Name CLASS-ID SPECIES BREED-ID`)",
                    i + 1
                ),
            )
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, class_id, species, breed_id] = fields[..] else {
            return Err(bad(&format!("{} fields", fields.len())));
        };
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(bad("the name is not a file name"));
        }
        let number = |field: &str, what: &str| {
            field
                .parse::<u32>()
                .map_err(|_| bad(&format!("{what} `{field}` is not a whole number")))
        };
        let class_id = number(class_id, "CLASS-ID")?;
        let species = match number(species, "SPECIES")? {
            1 => 0,
            2 => 1,
            other => {
                return Err(bad(&format!(
                    "SPECIES {other} is neither 1 (cat) nor 2 (dog)"
                )))
            }
        };
        let breed_id = number(breed_id, "BREED-ID")?;
        if !seen.insert(name.to_string()) {
            return Err(bad(&format!("`{name}` is listed twice")));
        }
        out.push(ReleaseEntry {
            name: name.to_string(),
            class_id,
            species,
            breed_id,
            image: root.join("images").join(format!("{name}.jpg")),
            trimap: root
                .join("annotations")
                .join("trimaps")
                .join(format!("{name}.png")),
            xml: root
                .join("annotations")
                .join("xmls")
                .join(format!("{name}.xml")),
        });
    }
    Ok(out)
}

/// Every image of `annotations/list.txt`, in list order; an image missing from `images/` is
/// an error naming it.
pub fn scan(root: &Path) -> Result<Vec<ReleaseEntry>> {
    let list = root.join(LIST);
    if !list.is_file() {
        return Err(DataError::Missing {
            path: list,
            hint: HINT.into(),
        });
    }
    let entries = read_list(&list, root)?;
    if let Some(e) = entries.iter().find(|e| !e.image.is_file()) {
        return Err(DataError::Missing {
            path: e.image.clone(),
            hint: format!("listed in {}; {HINT}", list.display()),
        });
    }
    Ok(entries)
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

/// Reads the head box of a PASCAL-VOC xml file: the first `annotation/object` with a
/// `bndbox`, and `annotation/size` when present.
pub fn read_head_box(path: &Path) -> Result<HeadBox> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let doc = roxmltree::Document::parse(&text)
        .map_err(|e| DataError::format(path, format!("not valid XML: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name("annotation") {
        return Err(DataError::format(
            path,
            format!(
                "root element is <{}>, expected <annotation>",
                root.tag_name().name()
            ),
        ));
    }
    let number = |parent: roxmltree::Node, name: &str| -> Result<f64> {
        let text = child(parent, name)
            .and_then(|n| n.text())
            .map(str::trim)
            .ok_or_else(|| {
                DataError::format(
                    path,
                    format!("<{}> has no <{name}>", parent.tag_name().name()),
                )
            })?;
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| DataError::format(path, format!("<{name}> is `{text}`, not a number")))
    };
    let bndbox = root
        .children()
        .filter(|n| n.has_tag_name("object"))
        .find_map(|o| child(o, "bndbox"))
        .ok_or_else(|| DataError::format(path, "no <object> with a <bndbox>"))?;
    let pixels = [
        number(bndbox, "xmin")?,
        number(bndbox, "ymin")?,
        number(bndbox, "xmax")?,
        number(bndbox, "ymax")?,
    ];
    let size = match child(root, "size") {
        Some(s) => {
            let (w, h) = (number(s, "width")?, number(s, "height")?);
            if w < 1.0 || h < 1.0 || w.fract() != 0.0 || h.fract() != 0.0 || w.max(h) > 1e9 {
                return Err(DataError::format(
                    path,
                    format!("image size {w}×{h} is not positive whole pixels"),
                ));
            }
            Some((w as u32, h as u32))
        }
        None => None,
    };
    Ok(HeadBox { pixels, size })
}

/// The head box of `path` as fractions `[x0, y0, x1, y1]` of an image of `width × height`
/// pixels, clamped to `[0, 1]`; inverted boxes and boxes far outside the image are errors.
fn box_fractions(path: &Path, head: &HeadBox, width: usize, height: usize) -> Result<[f32; 4]> {
    let [x0, y0, x1, y1] = head.pixels;
    let bad = |problem: &str| {
        DataError::format(
            path,
            format!("head box [xmin {x0}, ymin {y0}, xmax {x1}, ymax {y1}] {problem}"),
        )
    };
    if x1 < x0 || y1 < y0 {
        return Err(bad("is inverted (xmax < xmin or ymax < ymin)"));
    }
    let (w, h) = (width as f64, height as f64);
    let frac = [x0 / w, y0 / h, x1 / w, y1 / h];
    if frac.iter().any(|v| *v < -BOX_SLACK || *v > 1.0 + BOX_SLACK) {
        return Err(bad(&format!("lies outside the {width}×{height} image")));
    }
    Ok(frac.map(|v| v.clamp(0.0, 1.0) as f32))
}

/// Reads a trimap as a mask: 1 (pet) → 1, 2 (background) → 0, 3 (border) → `border`'s label.
/// Any other value is an error naming the file, the value and a pixel.
pub fn read_trimap(path: &Path, border: Border) -> Result<Array2<u8>> {
    let raw = image_io::read_gray(path)?;
    let mut out = Array2::<u8>::zeros(raw.dim());
    for ((y, x), &v) in raw.indexed_iter() {
        out[[y, x]] = match v {
            TRIMAP_PET => 1,
            TRIMAP_BACKGROUND => 0,
            TRIMAP_BORDER => border.label(),
            other => {
                return Err(DataError::format(
                    path,
                    format!(
                        "trimap value {other} at pixel ({x}, {y}); expected 1 (pet), \
                         2 (background) or 3 (border)"
                    ),
                ))
            }
        };
    }
    Ok(out)
}

/// Draws the splits of [`load`] without reading any image: the pool (listed images with an
/// xml and a trimap) is split per species in the given fractions with the seed, each split
/// shuffled, then cut to `limit` entries.
pub fn split(
    root: &Path,
    options: &ReleaseOptions,
    seed: u64,
    limit: Option<usize>,
) -> Result<ReleaseSplit> {
    let f = options.fractions;
    let total: f64 = f.iter().sum();
    if f.iter().any(|v| !v.is_finite() || *v < 0.0) || total <= 0.0 || !total.is_finite() {
        return Err(DataError::Split(format!(
            "pets release: split fractions {f:?} must be non-negative with a positive sum"
        )));
    }
    let entries = scan(root)?;
    let pool: Vec<ReleaseEntry> = entries
        .into_iter()
        .filter(|e| e.xml.is_file() && e.trimap.is_file())
        .collect();
    if pool.is_empty() {
        return Err(DataError::format(
            root.join(LIST),
            "no listed image has a head box (annotations/xmls/<Name>.xml) and a trimap \
             (annotations/trimaps/<Name>.png)",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut parts: [Vec<usize>; 3] = Default::default();
    for species in 0..2u8 {
        let mut idx: Vec<usize> = (0..pool.len())
            .filter(|&i| pool[i].species == species)
            .collect();
        idx.shuffle(&mut rng);
        let n = idx.len() as f64;
        let c1 = (n * f[0] / total).round() as usize;
        let c2 = ((n * (f[0] + f[1]) / total).round() as usize).max(c1);
        let (c1, c2) = (c1.min(idx.len()), c2.min(idx.len()));
        parts[0].extend_from_slice(&idx[..c1]);
        parts[1].extend_from_slice(&idx[c1..c2]);
        parts[2].extend_from_slice(&idx[c2..]);
    }
    let [train, val, test] = parts.map(|mut p| {
        p.shuffle(&mut rng);
        if let Some(l) = limit {
            p.truncate(l);
        }
        p.into_iter().map(|i| pool[i].clone()).collect::<Vec<_>>()
    });
    Ok(ReleaseSplit { train, val, test })
}

/// One decoded sample: image `(3, S, S)`, mask `(S, S)`, head box fractions.
fn prepare(
    entry: &ReleaseEntry,
    options: &ReleaseOptions,
) -> Result<(Array3<u8>, Array2<u8>, [f32; 4])> {
    let image = image_io::read_rgb(&entry.image)?;
    let (_, h, w) = image.dim();
    let mask = read_trimap(&entry.trimap, options.border)?;
    image_io::check_same_size(&entry.trimap, "trimap ", mask.dim(), &entry.image, (h, w))?;
    let head = read_head_box(&entry.xml)?;
    let frac = box_fractions(&entry.xml, &head, w, h)?;
    let s = options.size;
    Ok((resize_image(&image, s, s), resize_labels(&mask, s, s), frac))
}

/// Decodes `entries` (in that order) into a set with the tasks `seg`, `cls`, `box`, `rec`;
/// `what` names the set in errors.
pub fn read_set(
    entries: &[ReleaseEntry],
    options: &ReleaseOptions,
    what: &str,
) -> Result<DenseSet> {
    let s = options.size;
    if s == 0 {
        return Err(DataError::Split(format!(
            "{what}: the output size must be positive"
        )));
    }
    let n = entries.len();
    let decoded: Vec<(Array3<u8>, Array2<u8>, [f32; 4])> = entries
        .par_iter()
        .map(|e| prepare(e, options))
        .collect::<Result<_>>()?;
    let mut images = Array4::<u8>::zeros((n, 3, s, s));
    let mut maps = Array3::<u8>::zeros((n, s, s));
    let mut boxes = Array2::<f32>::zeros((n, 4));
    for (k, (img, map, frac)) in decoded.into_iter().enumerate() {
        images.index_axis_mut(Axis(0), k).assign(&img);
        maps.index_axis_mut(Axis(0), k).assign(&map);
        boxes.row_mut(k).assign(&Array1::from(frac.to_vec()));
    }
    let labels: Array1<u8> = entries.iter().map(|e| e.species).collect();
    let set = DenseSet {
        images,
        targets: vec![
            ("seg".into(), Target::Mask { maps, classes: 2 }),
            ("cls".into(), Target::Class { labels, classes: 2 }),
            ("box".into(), Target::Values(boxes)),
            ("rec".into(), Target::Reconstruction),
        ],
        valid: None,
    };
    set.check(what)?;
    Ok(set)
}

/// Loads the release under `root`: the listed images with a head box and a trimap are split
/// by [`split`] (per species, in `options.fractions`, with the seed; `limit` caps each split)
/// and decoded in parallel. Images are resized to `size × size` (triangle filter), trimaps by
/// nearest neighbour; boxes are fractions of the original image's width and height (its
/// decoded size; the xml's `size` is not used).
pub fn load(
    root: &Path,
    options: &ReleaseOptions,
    seed: u64,
    limit: Option<usize>,
) -> Result<DenseSplits> {
    let parts = split(root, options, seed, limit)?;
    Ok(DenseSplits {
        train: read_set(&parts.train, options, "pets release train")?,
        val: read_set(&parts.val, options, "pets release val")?,
        test: read_set(&parts.test, options, "pets release test")?,
    })
}

/// The breeds of the release, cats (capitalised) then dogs, each in alphabetical order.
const CAT_BREEDS: [&str; 12] = [
    "Abyssinian",
    "Bengal",
    "Birman",
    "Bombay",
    "British_Shorthair",
    "Egyptian_Mau",
    "Maine_Coon",
    "Persian",
    "Ragdoll",
    "Russian_Blue",
    "Siamese",
    "Sphynx",
];
const DOG_BREEDS: [&str; 25] = [
    "american_bulldog",
    "american_pit_bull_terrier",
    "basset_hound",
    "beagle",
    "boxer",
    "chihuahua",
    "english_cocker_spaniel",
    "english_setter",
    "german_shorthaired",
    "great_pyrenees",
    "havanese",
    "japanese_chin",
    "keeshond",
    "leonberger",
    "miniature_pinscher",
    "newfoundland",
    "pomeranian",
    "pug",
    "saint_bernard",
    "samoyed",
    "scottish_terrier",
    "shiba_inu",
    "staffordshire_bull_terrier",
    "wheaten_terrier",
    "yorkshire_terrier",
];

/// The header of the release's `list.txt`, as distributed.
const LIST_HEADER: &str = "#Image CLASS-ID SPECIES BREED ID
#ID: 1:37 Class ids
#SPECIES: 1:Cat 2:Dog
#BREED ID: 1-25:Cat 1:12:Dog
#All images with 1st letter as captial are cat images
#images with small first letter are dog images
";

/// CLASS-ID of a breed: its rank among all 37 breeds sorted case-insensitively, from 1.
fn class_id(breed: &str) -> u32 {
    let lower = breed.to_lowercase();
    let below = CAT_BREEDS
        .iter()
        .chain(DOG_BREEDS.iter())
        .filter(|b| b.to_lowercase() < lower)
        .count();
    below as u32 + 1
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

/// The trimap of a pet mask: 1 inside, 3 within `ring` pixels (chessboard distance) outside,
/// 2 elsewhere.
fn trimap_of(mask: &Array2<u8>, ring: usize) -> Array2<u8> {
    let (h, w) = mask.dim();
    Array2::from_shape_fn((h, w), |(y, x)| {
        if mask[[y, x]] == 1 {
            return TRIMAP_PET;
        }
        let (ya, yb) = (y.saturating_sub(ring), (y + ring).min(h - 1));
        let (xa, xb) = (x.saturating_sub(ring), (x + ring).min(w - 1));
        let near = (ya..=yb).any(|yy| (xa..=xb).any(|xx| mask[[yy, xx]] == 1));
        if near {
            TRIMAP_BORDER
        } else {
            TRIMAP_BACKGROUND
        }
    })
}

fn voc_xml(name: &str, species: u8, width: usize, height: usize, b: [f64; 4]) -> String {
    let kind = if species == 0 { "cat" } else { "dog" };
    format!(
        "<annotation><folder>OXIIIT</folder><filename>{name}.jpg</filename>\
         <source><database>OXFORD-IIIT Pet Dataset</database><annotation>OXIIIT</annotation>\
         <image>flickr</image></source><size><width>{width}</width><height>{height}</height>\
         <depth>3</depth></size><segmented>0</segmented><object><name>{kind}</name>\
         <pose>Frontal</pose><truncated>0</truncated><occluded>0</occluded><bndbox>\
         <xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>\
         <difficult>0</difficult></object></annotation>\n",
        b[0], b[1], b[2], b[3]
    )
}

/// Writes a small synthetic look-alike of the release under `root`: `count` JPEG images of
/// varying, non-square sizes (64–112 pixels a side) drawn like the synthetic coursework
/// pets, their trimaps (a 1–2 pixel border ring around the pet), head-box xml files for all
/// but about a fifth of them, `annotations/list.txt` with the release's header, and
/// `annotations/trainval.txt` / `test.txt` (every other image). Names follow the breed
/// (`Abyssinian_1`, `beagle_1`, ...). Same seed, same files.
pub fn write_synthetic(root: &Path, count: usize, seed: u64) -> Result<()> {
    let images = root.join("images");
    std::fs::create_dir_all(&images).map_err(|e| DataError::io(&images, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut rng);
    let no_xml: HashSet<usize> = order[..(count as f64 / 5.0).round() as usize]
        .iter()
        .copied()
        .collect();
    let mut per_breed = std::collections::HashMap::<&str, usize>::new();
    let mut lines: Vec<(u32, usize, String)> = Vec::with_capacity(count);
    for i in 0..count {
        let width = rng.random_range(64..=112usize);
        let mut height = rng.random_range(64..=112usize);
        if height == width {
            height = if width > 88 { width - 16 } else { width + 16 };
        }
        let ring = rng.random_range(1..=2usize);
        let sample = synthetic_sample(&mut rng, width, height);
        let species = u8::from(sample.species != 0);
        let (breed, breed_id) = if species == 0 {
            let k = rng.random_range(0..CAT_BREEDS.len());
            (CAT_BREEDS[k], k + 1)
        } else {
            let k = rng.random_range(0..DOG_BREEDS.len());
            (DOG_BREEDS[k], k + 1)
        };
        let number = per_breed.entry(breed).or_insert(0);
        *number += 1;
        let name = format!("{breed}_{number}");
        let image = sample
            .image
            .permuted_axes([2, 0, 1])
            .as_standard_layout()
            .to_owned();
        image_io::write_rgb(&images.join(format!("{name}.jpg")), &image)?;
        image_io::write_gray(
            &root
                .join("annotations")
                .join("trimaps")
                .join(format!("{name}.png")),
            &trimap_of(&sample.mask, ring),
        )?;
        if !no_xml.contains(&i) {
            write_text(
                &root
                    .join("annotations")
                    .join("xmls")
                    .join(format!("{name}.xml")),
                &voc_xml(&name, species, width, height, sample.head_box),
            )?;
        }
        let id = class_id(breed);
        lines.push((
            id,
            *number,
            format!("{name} {id} {} {breed_id}", species + 1),
        ));
    }
    lines.sort();
    let mut list = LIST_HEADER.to_string();
    let (mut trainval, mut test) = (String::new(), String::new());
    for (k, (_, _, line)) in lines.iter().enumerate() {
        for text in [
            &mut list,
            if k % 2 == 0 { &mut trainval } else { &mut test },
        ] {
            text.push_str(line);
            text.push('\n');
        }
    }
    let ann = root.join("annotations");
    write_text(&root.join(LIST), &list)?;
    write_text(&ann.join("trainval.txt"), &trainval)?;
    write_text(&ann.join("test.txt"), &test)
}
