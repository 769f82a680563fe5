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
#[inline]
pub fn pcg_hash(x: u32) -> u32 {
    let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// 32 random bits for (seed, stream, counter): one hash per argument, chained.
#[inline]
pub fn counter_bits(seed: u32, stream: u32, counter: u32) -> u32 {
    pcg_hash(seed ^ pcg_hash(stream ^ pcg_hash(counter)))
}

/// A uniform in the open interval (0, 1) from (seed, stream, counter): the top 23 bits k, centred
/// in their cell, (k + 0.5) / 2^23. Every step is exact in f32 (k + 0.5 needs 24 significant bits),
/// so the value is neither 0 nor 1 (a Gumbel draw takes two logarithms of it). With 24 bits,
/// k + 0.5 rounds for k >= 2^23 and the top k gave exactly 1.0, a Gumbel of +inf: one draw in 2^24,
/// so one sampled token in about 330 at a 50,280-token vocabulary would have been arbitrary.
#[inline]
pub fn counter_uniform(seed: u32, stream: u32, counter: u32) -> f32 {
    uniform_of_bits(counter_bits(seed, stream, counter))
}

/// The uniform of `counter_uniform` from its 32 random bits.
#[inline]
pub fn uniform_of_bits(bits: u32) -> f32 {
    ((bits >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// A standard Gumbel draw, -ln(-ln u), from (seed, stream, counter), with `portable_ln`.
#[inline]
pub fn counter_gumbel(seed: u32, stream: u32, counter: u32) -> f32 {
    gumbel_of_uniform(counter_uniform(seed, stream, counter))
}

/// -ln(-ln u) for u in (0, 1): finite, in [-2.82, 16.64] for the uniforms above.
#[inline]
pub fn gumbel_of_uniform(u: f32) -> f32 {
    -portable_ln(-portable_ln(u))
}

/// The natural logarithm of a positive normal f32 from plain multiplies and adds in a fixed order
/// (Cephes' `logf`: the exponent by bit manipulation, then a degree-9 polynomial on
/// [sqrt(1/2) - 1, sqrt(2) - 1]), within 2 ulp of `ln`. Why not `ln`: libm's `logf` and WGSL's `log`
/// are different approximations (WGSL's is only held to 2^-21 absolute near 1), so the same draw
/// would differ in its last bits between the cpu and a shader; this sequence of correctly rounded
/// operations is the same on both (`shaders/rollout.wgsl` `portable_ln` is a line-by-line copy).
/// No `mul_add`: Rust never fuses a * b + c, and the shader's twin writes the same two operations.
/// Not for zero, negative, subnormal, infinite or NaN arguments (the callers never pass them).
#[inline]
pub fn portable_ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m 2^e with m in [0.5, 1), as frexp.
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let t = if m < SQRT_HALF {
        e -= 1;
        m + m - 1.0
    } else {
        m - 1.0
    };
    let z = t * t;
    let mut p = 7.037_683_6e-2_f32;
    p = p * t - 1.151_461e-1;
    p = p * t + 1.167_699_9e-1;
    p = p * t - 1.242_014_1e-1;
    p = p * t + 1.424_932_3e-1;
    p = p * t - 1.666_805_8e-1;
    p = p * t + 2.000_071_4e-1;
    p = p * t - 2.499_999_4e-1;
    p = p * t + 3.333_333e-1;
    let ef = e as f32;
    // ln 2 split in two (0.693359375 is exact in 9 bits), as Cephes does.
    let mut y = p * t * z;
    y += ef * -2.121_944_4e-4;
    y -= 0.5 * z;
    let r = t + y;
    r + ef * 0.693_359_4
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

    #[test]
    fn the_extreme_uniforms_stay_open_and_their_gumbels_finite() {
        for bits in [0, 1, 511, 512, u32::MAX - 511, u32::MAX] {
            let u = uniform_of_bits(bits);
            assert!(u > 0.0 && u < 1.0, "{bits}: {u}");
            let g = gumbel_of_uniform(u);
            assert!(g.is_finite() && (-2.82..16.64).contains(&g), "{bits}: {g}");
        }
    }

    #[test]
    fn portable_ln_is_within_two_ulp_of_ln() {
        let mut x = 1e-30f32;
        while x < 1e30 {
            let (got, want) = (portable_ln(x), (x as f64).ln());
            let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            assert!(
                (got as f64 - want).abs() <= 2.0 * ulp,
                "ln({x}) = {got} vs {want}"
            );
            x *= 1.000_7;
        }
        // Near 1, where ln is tiny and the result must keep its relative accuracy.
        for k in 1..2000u32 {
            let x = 1.0 - k as f32 * f32::EPSILON / 2.0;
            let want = (x as f64).ln();
            assert!(
                ((portable_ln(x) as f64 - want) / want).abs() < 3e-7,
                "ln({x})"
            );
        }
    }
}
