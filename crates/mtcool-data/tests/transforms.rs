//! Shared transforms: tiling, patches, flips, resizes and padded crops.
#![allow(clippy::unwrap_used)]

use mtcool_data::transforms::{
    crop_padded, crop_padded_map, horizontal_flip, random_patches, resize_image, resize_labels,
    tile_origins,
};
use mtcool_data::{DenseSet, Target};
use ndarray::{Array1, Array2, Array3, Array4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Images with random channel 0, channel 1 = sample index; mask = channel 0 % 3; valid =
/// channel 0 % 2; class label = sample index.
fn toy_set(n: usize, h: usize, w: usize, seed: u64) -> DenseSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut images = Array4::<u8>::zeros((n, 3, h, w));
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                images[[i, 0, y, x]] = rng.random::<u8>();
                images[[i, 1, y, x]] = i as u8;
                images[[i, 2, y, x]] = x as u8;
            }
        }
    }
    let maps = Array3::from_shape_fn((n, h, w), |(i, y, x)| images[[i, 0, y, x]] % 3);
    let valid = Array3::from_shape_fn((n, h, w), |(i, y, x)| images[[i, 0, y, x]] % 2);
    DenseSet {
        images,
        targets: vec![
            ("seg".into(), Target::Mask { maps, classes: 3 }),
            (
                "cls".into(),
                Target::Class {
                    labels: (0..n as u8).collect::<Array1<u8>>(),
                    classes: n,
                },
            ),
            ("rec".into(), Target::Reconstruction),
        ],
        valid: Some(valid),
    }
}

#[test]
fn tile_origins_cover_and_end_flush() {
    for len in 1..80 {
        for tile in 1..20 {
            for overlap in 0..tile + 2 {
                let o = tile_origins(len, tile, overlap);
                if len <= tile {
                    assert_eq!(o, vec![0]);
                    continue;
                }
                assert_eq!(o[0], 0);
                assert_eq!(*o.last().unwrap() + tile, len, "len {len} tile {tile}");
                assert!(o.windows(2).all(|p| p[0] < p[1] && p[1] - p[0] <= tile));
                let mut covered = vec![false; len];
                for &s in &o {
                    covered[s..s + tile].iter_mut().for_each(|c| *c = true);
                }
                assert!(covered.iter().all(|&c| c));
            }
        }
    }
    assert_eq!(tile_origins(10, 4, 0), vec![0, 4, 6]);
    assert_eq!(tile_origins(3, 4, 1), vec![0]);
}

#[test]
fn random_patches_keep_alignment() {
    let set = toy_set(4, 20, 24, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let patches = random_patches(&set, 30, 8, &mut rng).unwrap();
    assert_eq!(patches.images.dim(), (30, 3, 8, 8));
    let Target::Mask { maps, classes } = &patches.targets[0].1 else {
        panic!("mask expected")
    };
    assert_eq!(*classes, 3);
    let Target::Class { labels, .. } = &patches.targets[1].1 else {
        panic!("class expected")
    };
    assert_eq!(patches.targets[2].1, Target::Reconstruction);
    let valid = patches.valid.as_ref().unwrap();
    for k in 0..30 {
        for y in 0..8 {
            for x in 0..8 {
                let v = patches.images[[k, 0, y, x]];
                assert_eq!(maps[[k, y, x]], v % 3);
                assert_eq!(valid[[k, y, x]], v % 2);
                assert_eq!(patches.images[[k, 1, y, x]], labels[k]);
            }
            // Columns stay consecutive.
            for x in 1..8 {
                assert_eq!(
                    patches.images[[k, 2, y, x]],
                    patches.images[[k, 2, y, x - 1]] + 1
                );
            }
        }
    }
    // Same seed, same patches.
    let again = random_patches(&set, 30, 8, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    assert_eq!(again, patches);
}

#[test]
fn random_patches_prefer_valid_centres() {
    let mut set = toy_set(2, 30, 30, 2);
    let mut valid = Array3::<u8>::zeros((2, 30, 30));
    valid
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = u8::from((i % 900) / 30 >= 15));
    set.valid = Some(valid);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let patches = random_patches(&set, 50, 6, &mut rng).unwrap();
    let valid = patches.valid.unwrap();
    let inside = (0..50).filter(|&k| valid[[k, 3, 3]] == 1).count();
    assert!(inside >= 48, "{inside} of 50 patch centres inside");
}

#[test]
fn random_patches_reject_bad_requests() {
    let set = toy_set(2, 10, 10, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert!(random_patches(&set, 1, 11, &mut rng).is_err());
    let mut boxes = set.clone();
    boxes
        .targets
        .push(("box".into(), Target::Values(Array2::zeros((2, 4)))));
    let err = random_patches(&boxes, 1, 4, &mut rng).unwrap_err();
    assert!(err.to_string().contains("box"), "{err}");
}

#[test]
fn flip_twice_is_identity_and_mirrors() {
    let mut set = toy_set(6, 7, 9, 4);
    set.targets.push((
        "box".into(),
        Target::Values(Array2::from_shape_fn((6, 4), |(_, c)| {
            [0.1, 0.2, 0.3, 0.4][c]
        })),
    ));
    let original = set.clone();
    horizontal_flip(&mut set, 1.0, &mut ChaCha8Rng::seed_from_u64(1));
    for i in 0..6 {
        for x in 0..9 {
            assert_eq!(set.images[[i, 0, 3, x]], original.images[[i, 0, 3, 8 - x]]);
        }
    }
    let Target::Mask { maps, .. } = &set.targets[0].1 else {
        panic!()
    };
    assert_eq!(maps[[2, 1, 0]], set.images[[2, 0, 1, 0]] % 3);
    let Target::Values(v) = &set.targets[3].1 else {
        panic!()
    };
    let expected = [0.7, 0.2, 0.9, 0.4];
    for (c, e) in expected.iter().enumerate() {
        assert!((v[[0, c]] - e).abs() < 1e-6);
    }
    horizontal_flip(&mut set, 1.0, &mut ChaCha8Rng::seed_from_u64(1));
    for (a, b) in set.targets.iter().zip(&original.targets) {
        if let (Target::Values(x), Target::Values(y)) = (&a.1, &b.1) {
            assert!(x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-6));
        } else {
            assert_eq!(a, b);
        }
    }
    assert_eq!(set.images, original.images);
    assert_eq!(set.valid, original.valid);

    // Random flips with the same stream twice undo each other; some samples flip, some not.
    let mut set = toy_set(16, 5, 5, 5);
    let original = set.clone();
    horizontal_flip(&mut set, 0.5, &mut ChaCha8Rng::seed_from_u64(9));
    let changed = (0..16)
        .filter(|&i| {
            set.images.index_axis(ndarray::Axis(0), i)
                != original.images.index_axis(ndarray::Axis(0), i)
        })
        .count();
    assert!(changed > 0 && changed < 16, "{changed}");
    horizontal_flip(&mut set, 0.5, &mut ChaCha8Rng::seed_from_u64(9));
    assert_eq!(set, original);
}

#[test]
fn resize_labels_keeps_existing_values() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let values = [3u8, 7, 200];
    let map = Array2::from_shape_fn((37, 23), |_| values[rng.random_range(0..3)]);
    for (h, w) in [(10, 10), (74, 46), (37, 23), (5, 60), (1, 1)] {
        let out = resize_labels(&map, h, w);
        assert_eq!(out.dim(), (h, w));
        assert!(out.iter().all(|v| values.contains(v)));
    }
    // Integer upscaling replicates.
    let small = Array2::from_shape_vec((2, 2), vec![1u8, 2, 3, 4]).unwrap();
    let big = resize_labels(&small, 4, 4);
    assert_eq!(big[[0, 0]], 1);
    assert_eq!(big[[1, 1]], 1);
    assert_eq!(big[[3, 3]], 4);
    assert_eq!(big[[0, 3]], 2);
}

#[test]
fn resize_image_shape_and_constant() {
    let img = Array3::from_elem((3, 40, 30), 77u8);
    let out = resize_image(&img, 13, 17);
    assert_eq!(out.dim(), (3, 13, 17));
    assert!(out.iter().all(|&v| v == 77));
}

#[test]
fn crop_padded_fills_outside() {
    let img = Array3::from_shape_fn((1, 4, 4), |(_, y, x)| (y * 4 + x) as u8 + 1);
    let out = crop_padded(&img, -1, 2, 3, 4, 0);
    assert_eq!(out.dim(), (1, 3, 4));
    assert_eq!(out[[0, 0, 0]], 0);
    assert_eq!(out[[0, 1, 0]], 3);
    assert_eq!(out[[0, 1, 1]], 4);
    assert_eq!(out[[0, 1, 2]], 0);
    let map = img.index_axis(ndarray::Axis(0), 0).to_owned();
    let far = crop_padded_map(&map, 10, 10, 2, 2, 9);
    assert!(far.iter().all(|&v| v == 9));
}
