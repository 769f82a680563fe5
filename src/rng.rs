//! A small seedable generator for initialisation, data order and sampling, so a seed fixes a model
//! and a run on every device (no dependency on a random crate's stream staying stable). It sits at
//! the ground floor: `nn`, `data`, `generate` and `train` all draw from it.

/// splitmix64: tiny, fast and good enough for initial weights and sampling.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// n values uniform in [-bound, bound): PyTorch's default Linear init uses bound = 1/sqrt(fan_in).
    pub fn uniform_vec(&mut self, n: usize, bound: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (2.0 * self.uniform() - 1.0) * bound)
            .collect()
    }

    /// n standard normal values (Box-Muller).
    pub fn normal_vec(&mut self, n: usize, std: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let u1 = self.uniform().max(1e-7);
                let u2 = self.uniform();
                std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
            })
            .collect()
    }
}

/// The counter-based random stream the planner draws from, on the host and in WGSL
/// (`shaders/rollout.wgsl` carries the same three functions): a draw is a pure function of
/// (seed, stream, counter), so a shader thread and its CPU twin, or a wave of leaves and the
/// one-leaf loop, see the same numbers whatever order they run in. The mixer is the PCG hash of
/// Jarzynski and Olano, "Hash Functions for GPU Rendering" (JCGT 2020): u32 only, as WGSL has.
pub fn pcg_hash(x: u32) -> u32 {
    let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// 32 random bits for (seed, stream, counter): one hash per argument, chained.
pub fn counter_bits(seed: u32, stream: u32, counter: u32) -> u32 {
    pcg_hash(seed ^ pcg_hash(stream ^ pcg_hash(counter)))
}

/// A uniform in the open interval (0, 1) from (seed, stream, counter): 24 bits, centred in their
/// cell, so neither 0 nor 1 (a Gumbel draw takes two logarithms of it).
pub fn counter_uniform(seed: u32, stream: u32, counter: u32) -> f32 {
    ((counter_bits(seed, stream, counter) >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// A standard Gumbel draw, -ln(-ln u), from (seed, stream, counter).
pub fn counter_gumbel(seed: u32, stream: u32, counter: u32) -> f32 {
    -(-counter_uniform(seed, stream, counter).ln()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pcg_hash_matches_an_independent_computation() {
        // The paper's listing evaluated with Python's unbounded integers mod 2^32.
        assert_eq!(pcg_hash(0), 129_708_002);
        assert_eq!(pcg_hash(1), 2_831_084_092);
    }

    #[test]
    fn counter_uniforms_are_open_and_spread_evenly() {
        let n = 100_000u32;
        let mut bins = [0usize; 10];
        for c in 0..n {
            let u = counter_uniform(7, 3, c);
            assert!(u > 0.0 && u < 1.0);
            bins[(u * 10.0) as usize] += 1;
        }
        for b in bins {
            assert!((b as f64 - 10_000.0).abs() < 400.0, "{bins:?}");
        }
        // A Gumbel's mean is the Euler-Mascheroni constant.
        let mean: f64 = (0..n).map(|c| counter_gumbel(1, 2, c) as f64).sum::<f64>() / n as f64;
        assert!((mean - 0.5772).abs() < 0.02, "{mean}");
    }
}
