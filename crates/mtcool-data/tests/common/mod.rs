//! Accessors of the pets readers' targets, shared by their tests (the HDF5 files' and the
//! original release's readers return the same tasks in the same order).
#![allow(dead_code)]

use mtcool_data::{DenseSet, Target};
use ndarray::{Array2, Array3};

/// The `seg` target's masks (two classes).
pub fn mask(set: &DenseSet) -> &Array3<u8> {
    match &set.targets[0].1 {
        Target::Mask { maps, classes } => {
            assert_eq!(*classes, 2);
            maps
        }
        other => panic!("seg target is {other:?}"),
    }
}

/// The `cls` target's species labels (two classes).
pub fn species(set: &DenseSet) -> Vec<u8> {
    match &set.targets[1].1 {
        Target::Class { labels, classes } => {
            assert_eq!(*classes, 2);
            labels.to_vec()
        }
        other => panic!("cls target is {other:?}"),
    }
}

/// The `box` target's head boxes.
pub fn boxes(set: &DenseSet) -> &Array2<f32> {
    match &set.targets[2].1 {
        Target::Values(v) => v,
        other => panic!("box target is {other:?}"),
    }
}
