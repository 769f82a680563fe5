//! Mixed-precision matmul (`ops::f16_matmuls`): the WGSL kernel with f16 operands and f32 sums
//! against its cpu twin (operands rounded with `half`, then the f32 product), forward and both
//! gradients, for all transposes; the rounding itself, overflow included; and that it really
//! differs from the f32 product.

use crate::common::*;
use crsm::{Device, Tensor, ops};

const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (130, 70, 257)];
const FLAGS: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

fn stored(rows: usize, cols: usize, transposed: bool) -> [usize; 2] {
    if transposed {
        [cols, rows]
    } else {
        [rows, cols]
    }
}

/// Both devices sum the same rounded products in f32, in different orders: f32 tolerances.
fn atol(len: usize) -> f32 {
    1e-5 * (len as f32).sqrt()
}

#[test]
fn lavapipe_offers_shader_f16() {
    // lavapipe reports shaderFloat16 and 16-bit storage; if wgpu stopped offering SHADER_F16 on
    // it, every f16 test below would test nothing.
    let Some(gpu) = lavapipe() else { return };
    assert!(gpu.supports_f16(), "{}", gpu.name());
    assert!(!Device::Cpu.supports_f16());
}

#[test]
fn f16_matmul_forward_and_gradients_match_the_cpu_twin_for_all_transposes() {
    for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb) in FLAGS {
            let a = rand_tensor(800 + s as u64, &stored(m, k, ta), -1.0, 1.0, &Device::Cpu);
            let b = rand_tensor(900 + s as u64, &stored(k, n, tb), -1.0, 1.0, &Device::Cpu);
            // The guard is gone when check_parity runs backward: the backward matmuls must use
            // the precision their forward recorded.
            let f = |x: &[Tensor]| {
                let _f16 = ops::f16_matmuls();
                ops::matmul(&x[0], &x[1], ta, tb).unwrap()
            };
            check_parity(
                &format!("matmul_f16 {m}x{k}x{n} ta={ta} tb={tb}"),
                &[a, b],
                f,
                1e-4,
                atol(m.max(k).max(n)),
            );
        }
    }
}

#[test]
fn f16_matmul_rounds_operands_to_nearest_and_shows_overflow() {
    for gpu in gpus() {
        // x [1, k] times the identity is x rounded to f16, exactly (sums of one product and zeros):
        // values halfway between f16 neighbours, subnormals, the largest finite f16 and overflow.
        let mut x = rand_vec(1000, 60, -3.0, 3.0);
        x.extend([
            1.0 + 2f32.powi(-11),       // halfway between 1 and 1 + 2^-10: to even, 1
            1.0 + 3.0 * 2f32.powi(-11), // halfway: to even, 1 + 2^-9
            3e-6,                       // subnormal in f16
            1e-9,                       // below half the smallest subnormal: 0
            -65504.0,                   // the largest finite f16
        ]);
        let k = x.len();
        let mut eye = vec![0f32; k * k];
        for i in 0..k {
            eye[i * k + i] = 1.0;
        }
        let _f16 = ops::f16_matmuls();
        let i = Tensor::from_f32(eye, &[k, k], &gpu).unwrap();
        let xs = Tensor::from_f32(x.clone(), &[1, k], &gpu).unwrap();
        let got = ops::matmul(&xs, &i, false, false)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        for (j, (g, v)) in got.iter().zip(&x).enumerate() {
            let want = half::f16::from_f32(*v).to_f32();
            assert_eq!(
                g.to_bits(),
                want.to_bits(),
                "x[{j}] = {v}: got {g}, want {want}"
            );
        }
        // An operand beyond 65504 must not pass as a finite value: loss scaling relies on seeing it.
        let mut over = vec![0f32; k];
        over[0] = 1e6;
        let xs = Tensor::from_f32(over, &[1, k], &gpu).unwrap();
        let got = ops::matmul(&xs, &i, false, false)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        assert!(!got[0].is_finite(), "1e6 came out as {}", got[0]);
    }
}

#[test]
fn f16_matmul_differs_from_f32_by_f16_rounding() {
    // Not f32 in disguise: operands with more than 11 significant bits change the product by
    // about 2^-11 relative, far above f32 rounding, and the cpu twin agrees.
    for gpu in gpus() {
        let (m, k, n) = (33, 64, 17);
        let a = rand_tensor(1100, &[m, k], -1.0, 1.0, &gpu);
        let b = rand_tensor(1200, &[k, n], -1.0, 1.0, &gpu);
        let exact = ops::matmul(&a, &b, false, false)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let mixed = {
            let _f16 = ops::f16_matmuls();
            ops::matmul(&a, &b, false, false)
                .unwrap()
                .to_vec_f32()
                .unwrap()
        };
        let worst = exact
            .iter()
            .zip(&mixed)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst > 1e-4 && worst < 2e-2, "f16 vs f32 differ by {worst}");
    }
}
