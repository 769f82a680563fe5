//! The learning-rate schedule: linear warmup from 0 to the peak, then cosine decay to the floor
//! at the last step (nanoGPT's and most LM recipes' schedule).

use std::f32::consts::PI;

#[derive(Clone, Copy, Debug)]
pub struct LrSchedule {
    pub peak: f32,
    pub floor: f32,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl LrSchedule {
    /// The rate for optimizer step `step` (0-based): `peak * (step + 1) / warmup` during warmup,
    /// then `floor + (peak - floor) * (1 + cos(pi * progress)) / 2` with progress going from 0
    /// after warmup to 1 at the last step; `floor` past the end.
    pub fn at(&self, step: usize) -> f32 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f32 / self.warmup_steps as f32;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f32 / decay_steps as f32).min(1.0);
        self.floor + (self.peak - self.floor) * 0.5 * (1.0 + (PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_linearly_then_cosine_reaches_the_floor() {
        let s = LrSchedule {
            peak: 1.0,
            floor: 0.1,
            warmup_steps: 4,
            total_steps: 14,
        };
        assert_eq!(s.at(0), 0.25);
        assert_eq!(s.at(3), 1.0);
        assert_eq!(s.at(4), 1.0);
        assert!((s.at(9) - 0.55).abs() < 1e-6, "{}", s.at(9));
        assert!((s.at(14) - 0.1).abs() < 1e-6);
        assert!((s.at(100) - 0.1).abs() < 1e-6);
        for t in 4..14 {
            assert!(s.at(t + 1) <= s.at(t));
        }
    }
}
