//! Training-time augmentation on the device: random left-right mirroring of a batch, applied
//! alike to the images and to every task's target (masks mirrored, boxes reflected, classes
//! unchanged), so that no batch makes a host round trip.

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::TaskKind;
use crate::error::Result;

/// Which images of a batch are mirrored: one fair coin per image from `rng`.
#[derive(Debug, Clone)]
pub struct FlipDraw {
    /// `(N,)` u8: 1 where the image is mirrored.
    chosen: Tensor,
    /// Whether any image is mirrored (nothing to do otherwise).
    any: bool,
}

impl FlipDraw {
    /// Draws the coins of a batch of `n` images on `device`.
    pub fn draw(n: usize, rng: &mut ChaCha8Rng, device: &candle_core::Device) -> Result<Self> {
        let coins: Vec<u8> = (0..n).map(|_| u8::from(rng.random_bool(0.5))).collect();
        let any = coins.contains(&1);
        Ok(Self {
            chosen: Tensor::from_vec(coins, n, device)?,
            any,
        })
    }

    /// `t` (samples on dim 0) with the chosen samples replaced by `mirrored`.
    fn select(&self, mirrored: &Tensor, t: &Tensor) -> Result<Tensor> {
        let mut shape = vec![1; t.rank()];
        shape[0] = t.dim(0)?;
        let mask = self.chosen.reshape(shape)?.broadcast_as(t.shape())?;
        Ok(mask.where_cond(mirrored, t)?)
    }

    /// Mirrors the chosen samples of `t` along its last dimension (images `(N, C, H, W)`,
    /// masks `(N, H, W)`).
    pub fn images(&self, t: &Tensor) -> Result<Tensor> {
        if !self.any {
            return Ok(t.clone());
        }
        let width = t.dim(t.rank() - 1)?;
        let reversed: Vec<u32> = (0..width as u32).rev().collect();
        let reversed = Tensor::from_vec(reversed, width, t.device())?;
        let mirrored = t.index_select(&reversed, t.rank() - 1)?;
        self.select(&mirrored, t)
    }

    /// A task's target under the same draw: masks mirrored, boxes `[x0, y0, x1, y1]` (image
    /// fractions) reflected to `[1 − x1, y0, 1 − x0, y1]`, class labels unchanged.
    pub fn target(&self, kind: &TaskKind, t: &Tensor) -> Result<Tensor> {
        match kind {
            _ if !self.any => Ok(t.clone()),
            TaskKind::Mask { .. } | TaskKind::Reconstruction { .. } => self.images(t),
            TaskKind::BoundingBox => {
                let column = |i: usize| t.narrow(1, i, 1);
                let reflect = |i: usize| -> Result<Tensor> { Ok(column(i)?.affine(-1.0, 1.0)?) };
                let mirrored = Tensor::cat(&[reflect(2)?, column(1)?, reflect(0)?, column(3)?], 1)?;
                self.select(&mirrored.to_dtype(t.dtype())?, t)
            }
            TaskKind::Class { .. } => Ok(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    fn draw(coins: &[u8]) -> FlipDraw {
        FlipDraw {
            chosen: Tensor::new(coins, &Device::Cpu).unwrap(),
            any: coins.contains(&1),
        }
    }

    #[test]
    fn mirrors_only_the_chosen_images_and_their_masks() {
        // Two 1×1×3 images and their 1×3 masks; only the second is mirrored.
        let images = Tensor::new(&[[[[1u8, 2, 3]]], [[[4, 5, 6]]]], &Device::Cpu).unwrap();
        let masks = Tensor::new(&[[[0u32, 1, 2]], [[2, 1, 0]]], &Device::Cpu).unwrap();
        let d = draw(&[0, 1]);
        let flipped = d.images(&images).unwrap();
        assert_eq!(
            flipped.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
            [1, 2, 3, 6, 5, 4]
        );
        let kind = TaskKind::Mask {
            classes: 3,
            regions: vec![],
        };
        let m = d.target(&kind, &masks).unwrap();
        assert_eq!(
            m.flatten_all().unwrap().to_vec1::<u32>().unwrap(),
            [0, 1, 2, 0, 1, 2]
        );
    }

    #[test]
    fn boxes_are_reflected_and_classes_kept() {
        let boxes = Tensor::new(
            &[[0.1f32, 0.2, 0.4, 0.9], [0.5, 0.0, 0.7, 0.5]],
            &Device::Cpu,
        )
        .unwrap();
        let d = draw(&[1, 0]);
        let b = d.target(&TaskKind::BoundingBox, &boxes).unwrap();
        let got = b.to_vec2::<f32>().unwrap();
        let want = [[0.6f32, 0.2, 0.9, 0.9], [0.5, 0.0, 0.7, 0.5]];
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        let labels = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let same = d.target(&TaskKind::Class { classes: 2 }, &labels).unwrap();
        assert_eq!(same.to_vec1::<u32>().unwrap(), [1, 0]);
    }

    #[test]
    fn the_same_seed_draws_the_same_coins() {
        let coins = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            FlipDraw::draw(64, &mut rng, &Device::Cpu)
                .unwrap()
                .chosen
                .to_vec1::<u8>()
                .unwrap()
        };
        assert_eq!(coins(3), coins(3));
        let c = coins(3);
        let flipped = c.iter().filter(|&&x| x == 1).count();
        assert!((16..=48).contains(&flipped), "{flipped} of 64");
    }
}
