//! MuZero's MinMaxStats (Schrittwieser et al. 2020, Appendix B): Q-values are rescaled to [0, 1]
//! by the smallest and largest Q the whole tree has backed up, so PUCT's c1 and c2 work whatever
//! the scale of the critic's values.

/// The running range of backed-up Q-values; empty until the first backup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMaxStats {
    pub min: f32,
    pub max: f32,
}

impl Default for MinMaxStats {
    fn default() -> Self {
        MinMaxStats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl MinMaxStats {
    pub fn update(&mut self, q: f32) {
        self.min = self.min.min(q);
        self.max = self.max.max(q);
    }

    /// `(q - min) / (max - min)`. While the range is empty or a single point every Q maps to 0
    /// (MuZero returns q unchanged there, which would mix raw values into [0, 1] scores), so
    /// the prior term alone decides, as it does for unvisited actions.
    pub fn normalize(&self, q: f32) -> f32 {
        if self.max > self.min {
            (q - self.min) / (self.max - self.min)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MinMaxStats;

    #[test]
    fn normalisation_maps_the_seen_range_to_the_unit_interval() {
        let mut s = MinMaxStats::default();
        assert_eq!(s.normalize(5.0), 0.0, "empty range");
        s.update(-2.0);
        assert_eq!(s.normalize(-2.0), 0.0, "a single point");
        s.update(6.0);
        s.update(1.0);
        assert_eq!((s.min, s.max), (-2.0, 6.0));
        assert_eq!(s.normalize(-2.0), 0.0);
        assert_eq!(s.normalize(6.0), 1.0);
        assert_eq!(s.normalize(0.0), 0.25);
    }
}
