//! Dynamic loss scaling for f16 training (Micikevicius et al., "Mixed Precision Training"; the
//! policy of PyTorch's `GradScaler`). The backward pass is seeded with `scale` instead of 1, so
//! small gradients stay above f16's underflow; the optimizer multiplies by `1 / scale` inside the
//! fused AdamW (with the clipping factor), so the update is the unscaled one. A non-finite
//! gradient means the scale was too large: the step is skipped and the scale halved. After
//! `growth_interval` good steps in a row the scale doubles, to probe whether a larger one fits.
//!
//! Scales are powers of two (the initial one is rounded down to one), so scaling and unscaling are
//! exact in floating point and a step without overflow equals the unscaled step.

use serde::{Deserialize, Serialize};

/// The scale never falls below this: an overflow at scale 1 is not the scale's fault, and the
/// trainer then counts it as a non-finite step like any other.
pub const MIN_LOSS_SCALE: f32 = 1.0;
/// Nor grows above this (2^24), so doubling can never reach infinity.
pub const MAX_LOSS_SCALE: f32 = 16_777_216.0;

/// What the scaler keeps between steps; checkpointed so a resumed run scales exactly as before.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScaleState {
    pub scale: f32,
    /// Good steps since the last overflow or growth.
    pub good_steps: usize,
}

/// What one `update` did to the scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleChange {
    Kept,
    /// Doubled after `growth_interval` good steps.
    Grew,
    /// Halved after an overflow (or kept, when already at `MIN_LOSS_SCALE`).
    Backed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LossScaler {
    state: LossScaleState,
    growth_interval: usize,
}

/// The largest power of two <= `x`, within [MIN_LOSS_SCALE, MAX_LOSS_SCALE].
fn power_of_two_at_most(x: f32) -> f32 {
    let x = x.clamp(MIN_LOSS_SCALE, MAX_LOSS_SCALE);
    2f32.powi(x.log2().floor() as i32)
}

impl LossScaler {
    /// Starts at `initial` (rounded down to a power of two, clamped to the range above).
    pub fn new(initial: f32, growth_interval: usize) -> Self {
        LossScaler {
            state: LossScaleState {
                scale: power_of_two_at_most(initial),
                good_steps: 0,
            },
            growth_interval: growth_interval.max(1),
        }
    }

    /// Continues from a checkpointed state.
    pub fn restore(&mut self, state: LossScaleState) {
        self.state = LossScaleState {
            scale: power_of_two_at_most(state.scale),
            good_steps: state.good_steps,
        };
    }

    pub fn state(&self) -> LossScaleState {
        self.state
    }

    /// What the loss gradient is seeded with.
    pub fn scale(&self) -> f32 {
        self.state.scale
    }

    /// True when an overflow can no longer be blamed on the scale.
    pub fn at_floor(&self) -> bool {
        self.state.scale <= MIN_LOSS_SCALE
    }

    /// After non-finite gradients: halves the scale. True when the scale was to blame (it was above
    /// the floor), so the skipped step should not count towards the trainer's limit of non-finite
    /// steps in a row; false at the floor, where it counts like any other.
    pub fn overflowed(&mut self) -> bool {
        let blamed = !self.at_floor();
        self.update(false);
        blamed
    }

    /// After a backward pass: `finite` tells whether every gradient was finite.
    pub fn update(&mut self, finite: bool) -> ScaleChange {
        let s = &mut self.state;
        if !finite {
            s.good_steps = 0;
            s.scale = (s.scale * 0.5).max(MIN_LOSS_SCALE);
            return ScaleChange::Backed;
        }
        s.good_steps += 1;
        if s.good_steps >= self.growth_interval && s.scale < MAX_LOSS_SCALE {
            s.good_steps = 0;
            s.scale *= 2.0;
            return ScaleChange::Grew;
        }
        ScaleChange::Kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_halves_down_to_the_floor() {
        let mut s = LossScaler::new(8.0, 100);
        assert_eq!(s.update(false), ScaleChange::Backed);
        assert_eq!(s.scale(), 4.0);
        s.update(false);
        s.update(false);
        assert_eq!(s.scale(), 1.0);
        assert!(s.at_floor());
        s.update(false);
        assert_eq!(s.scale(), MIN_LOSS_SCALE, "the floor holds");
    }

    #[test]
    fn overflows_are_blamed_on_the_scale_until_the_floor() {
        let mut s = LossScaler::new(4.0, 100);
        assert!(s.overflowed(), "4 -> 2");
        assert!(s.overflowed(), "2 -> 1");
        assert!(!s.overflowed(), "at the floor an overflow is the model's");
        assert_eq!(s.scale(), MIN_LOSS_SCALE);
    }

    #[test]
    fn scale_doubles_after_the_growth_interval_of_good_steps() {
        let mut s = LossScaler::new(1024.0, 3);
        assert_eq!(s.update(true), ScaleChange::Kept);
        assert_eq!(s.update(true), ScaleChange::Kept);
        assert_eq!(s.update(true), ScaleChange::Grew);
        assert_eq!(
            s.state(),
            LossScaleState {
                scale: 2048.0,
                good_steps: 0
            }
        );
        // An overflow restarts the count.
        s.update(true);
        s.update(true);
        s.update(false);
        assert_eq!(
            s.state(),
            LossScaleState {
                scale: 1024.0,
                good_steps: 0
            }
        );
        s.update(true);
        s.update(true);
        assert_eq!(s.scale(), 1024.0);
        assert_eq!(s.update(true), ScaleChange::Grew);
    }

    #[test]
    fn scales_are_powers_of_two_within_range() {
        assert_eq!(LossScaler::new(65536.0, 1).scale(), 65536.0);
        assert_eq!(LossScaler::new(1000.0, 1).scale(), 512.0);
        assert_eq!(LossScaler::new(0.25, 1).scale(), MIN_LOSS_SCALE);
        assert_eq!(LossScaler::new(1e30, 1).scale(), MAX_LOSS_SCALE);
        let mut s = LossScaler::new(MAX_LOSS_SCALE, 1);
        assert_eq!(
            s.update(true),
            ScaleChange::Kept,
            "no growth past the ceiling"
        );
        assert_eq!(s.scale(), MAX_LOSS_SCALE);
    }

    #[test]
    fn a_restored_scaler_continues_the_same_sequence() {
        let mut a = LossScaler::new(64.0, 2);
        a.update(true);
        let mut b = LossScaler::new(65536.0, 2);
        b.restore(a.state());
        assert_eq!(a.update(true), b.update(true));
        assert_eq!(a.state(), b.state());
    }
}
