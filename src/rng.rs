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
