//! Synthetic look-alikes of every dataset, written in the providers' on-disk formats by the
//! readers' own `write_synthetic` functions, small enough for tests and quick runs.
//!
//! [`write_all`] writes the layout of the data directory (`refuge/`, `hrfav/`, `pets/`,
//! `pets-release/`, `organcmnist/organcmnist.npz`), so `--data DIR` works on its output as on
//! real data. The original Oxford-IIIT Pet layout (read by [`crate::pets_release`]) is always
//! written to `pets-release/`. `pets/`, which every pets config reads, holds the coursework's
//! HDF5 files in a build with the `hdf5` feature, and the release layout otherwise, so the pets
//! configs run on the synthetic data in every build.

use std::path::Path;

use crate::Result;

/// How much synthetic data [`write_all`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthSizes {
    /// REFUGE images per release (Training, Validation, Test).
    pub refuge_per_release: usize,
    /// Side of the REFUGE images.
    pub refuge_size: u32,
    /// HRF images per group (healthy, diabetic retinopathy, glaucoma).
    pub hrf_per_group: usize,
    /// HRF image width and height.
    pub hrf_size: (u32, u32),
    /// Pets samples in train, val, test.
    pub pets: [usize; 3],
    /// Side of the pets images.
    pub pets_size: usize,
    /// Images of the original Oxford-IIIT Pet layout (`pets-release/`); about a fifth have
    /// no head box.
    pub pets_release: usize,
    /// OrganCMNIST images in train, val, test.
    pub organ: [usize; 3],
}

impl Default for SynthSizes {
    fn default() -> Self {
        Self {
            refuge_per_release: 16,
            refuge_size: 160,
            hrf_per_group: 4,
            hrf_size: (192, 128),
            pets: [48, 16, 16],
            pets_size: 64,
            pets_release: 60,
            organ: [1100, 220, 440],
        }
    }
}

/// Whether this build writes (and reads) the pets HDF5 files.
pub const WITH_PETS: bool = cfg!(feature = "hdf5");

/// Writes every synthetic dataset under `out`, deterministically from `seed` (`pets/`: the
/// HDF5 files with the `hdf5` feature, see [`WITH_PETS`], else the release layout).
pub fn write_all(out: &Path, sizes: &SynthSizes, seed: u64) -> Result<()> {
    crate::refuge::write_synthetic(
        &out.join("refuge"),
        sizes.refuge_per_release,
        sizes.refuge_size,
        seed,
    )?;
    crate::hrfav::write_synthetic(
        &out.join("hrfav"),
        sizes.hrf_per_group,
        sizes.hrf_size.0,
        sizes.hrf_size.1,
        seed.wrapping_add(1),
    )?;
    #[cfg(feature = "hdf5")]
    crate::pets::write_synthetic(
        &out.join("pets"),
        sizes.pets,
        sizes.pets_size,
        seed.wrapping_add(2),
    )?;
    #[cfg(not(feature = "hdf5"))]
    crate::pets_release::write_synthetic(
        &out.join("pets"),
        sizes.pets_release,
        seed.wrapping_add(4),
    )?;
    crate::pets_release::write_synthetic(
        &out.join("pets-release"),
        sizes.pets_release,
        seed.wrapping_add(4),
    )?;
    let organ_dir = out.join("organcmnist");
    std::fs::create_dir_all(&organ_dir).map_err(|e| crate::DataError::io(&organ_dir, e))?;
    crate::organcmnist::write_synthetic(
        &organ_dir.join(crate::organcmnist::FILE_NAME),
        sizes.organ,
        seed.wrapping_add(3),
    )
}
