//! Wider vectors for the cpu loops without a second copy of them, and an exp that vectorises.
//!
//! The crate is built for baseline x86-64 (SSE2), so LLVM vectorises our loops 4 floats wide and
//! cannot use FMA. [`dispatch`] runs a [`Kernel`] inside a function compiled with AVX2 + FMA when
//! the cpu has them (checked once, at run time), else the same code at baseline: one body, two
//! compilations. The body is `#[inline(always)]` so it is vectorised inside the AVX2 function
//! (LLVM vectorises after inlining). Call it inside rayon tasks: a target feature does not carry
//! into closures.

/// A loop nest to run with the widest vectors the cpu has. Implement `run` as `#[inline(always)]`.
pub trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

/// Runs `k` compiled for AVX2 + FMA where the cpu has them, else at the build's baseline.
#[inline(always)]
pub fn dispatch<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features `run_avx2_fma` is compiled with were detected on this cpu just above.
        return unsafe { run_avx2_fma(k) };
    }
    k.run()
}

/// As [`dispatch`], with AVX-512 where the cpu has it. Only the decode dot products use it: they
/// stream weights, and 16 bf16 weights widen and multiply in one instruction each, which measured
/// ~16% faster than AVX2 on the bf16 step here (no gain for f32, which is bound by bytes); other
/// loops stay on AVX2, where wide vectors cost clock speed on some cpus for no gain.
#[inline(always)]
pub fn dispatch_avx512<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        // SAFETY: the features were detected on this cpu just above.
        return unsafe { run_avx512(k) };
    }
    dispatch(k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(k: K) -> K::Output {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2_fma<K: Kernel>(k: K) -> K::Output {
    k.run()
}

/// e^x in f32 without a libm call and without branches, so loops over it vectorise: x = n ln2 + r
/// with |r| <= ln2/2, e^r by Cephes' degree-6 polynomial (expf's; about 1e-7 relative, checked
/// against f64 below), times 2^n built in the exponent bits. Below ln(smallest normal) it returns
/// 0 (libm returns a subnormal there: an absolute difference under 1.2e-38); above 88.376
/// (ln 2^127.5, where 2^n would leave the normal range) infinity, where libm still has finite
/// values up to ln(f32::MAX) = 88.72; NaN stays NaN. No op here feeds it such large arguments.
///
/// The polynomial uses `mul_add`: one instruction inside [`dispatch`]'s AVX2 + FMA compilation
/// (LLVM never fuses a separate multiply and add by itself), a libm call at the baseline, where
/// the result is the same, since a fused multiply-add rounds once either way.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for the n that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LO: f32 = -87.336_54; // ln(2^-126)
    const HI: f32 = 88.376_26; // keeps n <= 127 so 2^n is a normal float
    let xc = x.clamp(LO, HI);
    let k = xc.mul_add(LOG2E, ROUND);
    let n = k - ROUND;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, xc));
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let er = p.mul_add(r * r, r) + 1.0;
    let two_n = f32::from_bits(((k.to_bits() as i32 - ROUND.to_bits() as i32 + 127) as u32) << 23);
    let y = er * two_n;
    let y = if x < LO { 0.0 } else { y };
    let y = if x > HI { f32::INFINITY } else { y };
    if x.is_nan() { x } else { y }
}

/// 2^t in f32, the scan's decays exp(delta A) = 2^(delta A log2 e) with log2 e folded into A once.
/// Cheaper than [`exp`] (about 13 vector instructions against 21, which is most of the scan's
/// forward): t = n + f with n the nearest integer, so f in [-1/2, 1/2] is exact and needs no
/// Cody-Waite split; 2^f by a degree-5 polynomial (fitted for relative error with the constant term
/// held at 1; 1.7e-7 in f32 arithmetic, checked against f64 below). The argument's own rounding adds |t| 6e-8 relative, so
/// it suits arguments of moderate size. t is clamped to [-126, 127], so below 2^-126 (1.2e-38) it
/// returns 2^-126 rather than a subnormal or zero. NaN stays NaN (the clamp keeps it).
#[inline(always)]
pub fn pow2(t: f32) -> f32 {
    // Adding 1.5 * 2^23 rounds to the nearest integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let tc = t.clamp(-126.0, 127.0);
    let k = tc + ROUND;
    let n = k - ROUND;
    let f = tc - n;
    // The constant term is exactly 1, so that a zero step (delta = 0) decays by exactly 1.
    let mut p = 1.326_472_7e-3_f32;
    p = p.mul_add(f, 9.671_513e-3);
    p = p.mul_add(f, 5.550_733_6e-2);
    p = p.mul_add(f, 2.402_224_2e-1);
    // A fitted coefficient near ln 2, not ln 2 itself.
    #[allow(clippy::approx_constant)]
    const C1: f32 = 6.931_47e-1;
    p = p.mul_add(f, C1);
    p = p.mul_add(f, 1.0);
    // 2^n in the exponent bits: n's integer sits in k's low mantissa bits.
    let bias = 127 - ROUND.to_bits() as i32;
    p * f32::from_bits(((k.to_bits() as i32 + bias) as u32) << 23)
}

/// ln(1 + t) for t in [0, 1] (softplus's ln(1 + e^-|x|)), branch-free and without a division:
/// Cephes' logf polynomial (degree 9 in x, about 1e-7 relative) on x = t when 1 + t < sqrt(2),
/// else on x = (1 + t) / 2 - 1 = (t - 1) / 2 plus ln 2. Both forms of x are computed from t itself,
/// never from the rounded 1 + t, so tiny t keep their relative accuracy (ln(1 + t) = t - t^2/2 ...)
/// with no correction. NaN stays NaN.
#[inline(always)]
pub fn ln_1p_unit(t: f32) -> f32 {
    const SQRT2_M1: f32 = std::f32::consts::SQRT_2 - 1.0;
    let high = t > SQRT2_M1;
    let x = if high { (t - 1.0) * 0.5 } else { t };
    let z = x * x;
    let mut p = 7.037_683_6e-2_f32;
    p = p.mul_add(x, -1.151_461e-1);
    p = p.mul_add(x, 1.167_699_9e-1);
    p = p.mul_add(x, -1.242_014_1e-1);
    p = p.mul_add(x, 1.424_932_3e-1);
    p = p.mul_add(x, -1.666_805_8e-1);
    p = p.mul_add(x, 2.000_071_4e-1);
    p = p.mul_add(x, -2.499_999_4e-1);
    p = p.mul_add(x, 3.333_333e-1);
    let r = (p * x).mul_add(z, (-0.5f32).mul_add(z, x));
    if high { r + std::f32::consts::LN_2 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_f64_over_the_range_the_ops_use() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.000_731;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert!((exp(88.3) as f64 / (88.3f32 as f64).exp() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn pow2_matches_f64_where_the_scan_uses_it() {
        let mut worst = 0f64;
        let mut t = -126.0f32;
        while t < 127.0 {
            let want = (t as f64).exp2();
            let rel = ((pow2(t) as f64 - want) / want).abs();
            worst = worst.max(rel);
            t += 0.000_517;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(pow2(0.0), 1.0);
        assert_eq!(pow2(-3.0), 0.125);
        assert_eq!(pow2(-1000.0), f32::MIN_POSITIVE);
        assert!(pow2(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_unit_matches_f64_from_tiny_arguments_to_one() {
        let mut worst = 0f64;
        let mut t = 1e-30f32;
        while t <= 1.0 {
            let want = (t as f64).ln_1p();
            let rel = ((ln_1p_unit(t) as f64 - want) / want).abs();
            assert!(rel < 4e-7, "ln_1p_unit({t}) = {} vs {want}", ln_1p_unit(t));
            worst = worst.max(rel);
            t *= 1.000_03;
        }
        assert!(worst > 0.0);
        assert_eq!(ln_1p_unit(0.0), 0.0);
        assert!((ln_1p_unit(1.0) as f64 - 2f64.ln()).abs() < 1e-7);
        assert!(ln_1p_unit(f32::NAN).is_nan());
    }

    struct Twice<'a>(&'a [f32]);
    impl Kernel for Twice<'_> {
        type Output = Vec<f32>;
        #[inline(always)]
        fn run(self) -> Vec<f32> {
            self.0.iter().map(|v| exp(*v) * 2.0).collect()
        }
    }

    #[test]
    fn dispatch_runs_the_kernel() {
        assert_eq!(dispatch(Twice(&[0.0, -200.0])), vec![2.0, 0.0]);
    }
}
