//! Kernels over buffers larger than one binding may span: a context held to a 16 KiB binding
//! limit with 256-byte offset alignment makes tiny tensors take the chunked launches a 147 MiB
//! embedding takes on lavapipe (128 MiB per binding). Each test first checks that its shapes do
//! split (and into a ragged last chunk), then compares with the cpu twin, forward and backward.

use std::sync::Arc;

use crate::common::*;
use crsm::backend::wgpu::Binding;
use crsm::backend::{BindingLimits, WgpuContext};
use crsm::{Device, Error, Tensor, ops};

const LIMITS: BindingLimits = BindingLimits {
    max_binding_bytes: 16384,
    offset_alignment: 256,
};

fn small_binding_context() -> Option<Arc<WgpuContext>> {
    lavapipe_with_binding_limits(LIMITS)
}

/// The row ranges `row_chunks` gives, as (start, end) pairs.
fn chunks(ctx: &WgpuContext, rows: usize, row_bytes: &[u64]) -> Vec<(usize, usize)> {
    ctx.row_chunks("test", rows, row_bytes)
        .unwrap()
        .into_iter()
        .map(|r| (r.start, r.end))
        .collect()
}

#[test]
fn row_chunks_fit_the_limit_start_aligned_and_end_ragged() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    // Rows of 96 bytes need multiples of 8 rows for 256-byte offsets, rows of 4 bytes multiples
    // of 64; 16384 / 96 = 170 rows fit, so chunks of 128 rows and a last one of 44.
    assert_eq!(
        chunks(&ctx, 300, &[96, 4]),
        [(0, 128), (128, 256), (256, 300)]
    );
    // Alone, 96-byte rows split at 168 (the multiple of 8 below 170).
    assert_eq!(chunks(&ctx, 400, &[96]), [(0, 168), (168, 336), (336, 400)]);
    // What fits is one launch, whatever the alignment.
    assert_eq!(chunks(&ctx, 170, &[96, 4]), [(0, 170)]);
    assert_eq!(chunks(&ctx, 0, &[96]), [(0, 0)]);
}

#[test]
fn embedding_split_by_table_rows_and_tokens_matches_cpu_with_ids_in_every_chunk() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    let (v, d, n) = (400, 24, 300);
    assert_eq!(chunks(&ctx, v, &[96]).len(), 3, "the table must split");
    assert_eq!(chunks(&ctx, n, &[4, 96]).len(), 3, "the tokens must split");
    assert_eq!(
        chunks(&ctx, n, &[96]).len(),
        2,
        "the backward's g must split"
    );
    // Ids at both edges of every chunk of table rows (0..168, 168..336, 336..400), then spread
    // over all rows with repeats.
    let mut ids: Vec<u32> = vec![0, 167, 168, 335, 336, 399, 399, 0];
    ids.extend((ids.len()..n).map(|t| ((t * 7919 + 13) % v) as u32));
    let ids = Tensor::from_u32(ids, &[3, 100], &Device::Cpu).unwrap();
    let table = rand_tensor(1, &[v, d], -1.0, 1.0, &Device::Cpu);
    // A copy and a sum in token order on both devices: equal bit for bit.
    check_parity_on(
        &Device::Wgpu(ctx),
        "embedding [400, 24] in chunks",
        &[ids, table],
        |x| ops::embedding(&x[0], &x[1]).unwrap(),
        0.0,
        0.0,
    );
}

#[test]
fn matmul_split_along_m_n_and_k_matches_cpu_for_all_transposes() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    let (m, k, n) = (70, 90, 110);
    // C's rows (440 bytes) split M, A stored [K, M] (280-byte rows) or B stored [K, N] split K,
    // B stored [N, K] (360-byte rows) splits N; each with a ragged last block.
    assert_eq!(chunks(&ctx, m, &[440, 360]), [(0, 32), (32, 64), (64, 70)]);
    assert_eq!(chunks(&ctx, k, &[280, 440]), [(0, 32), (32, 64), (64, 90)]);
    assert_eq!(chunks(&ctx, n, &[360]).len(), 4);
    // The backward's products sum over M or N (70 or 110 terms) and K splits accumulate in a
    // different order: the kernel tests' fp32 tolerance for sums of 110 products.
    check_split_products(Device::Wgpu(ctx), (m, k, n), 10, false);
}

/// Forward and gradients of op(A) op(B) for all four transposes on `gpu` against the cpu, with
/// f16 operands when `f16`; seeds from `seed`.
fn check_split_products(gpu: Device, (m, k, n): (usize, usize, usize), seed: u64, f16: bool) {
    for (s, (ta, tb)) in [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let a = rand_tensor(seed + s as u64, &a_shape, -1.0, 1.0, &Device::Cpu);
        let b = rand_tensor(seed + 10 + s as u64, &b_shape, -1.0, 1.0, &Device::Cpu);
        check_parity_on(
            &gpu,
            &format!(
                "matmul {a_shape:?} x {b_shape:?} (transposes {ta}, {tb}, f16 {f16}) in blocks"
            ),
            &[a, b],
            |x| {
                let _precision = ops::set_f16_matmuls(f16);
                ops::matmul(&x[0], &x[1], ta, tb).unwrap()
            },
            1e-4,
            1e-5 * (m.max(n).max(k) as f32).sqrt(),
        );
    }
}

#[test]
fn f16_matmul_splits_across_the_binding_limit_like_the_f32_one() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    // Sizes whose f16 rows (192, 256 bytes) are near multiples of the 256-byte offset alignment, in
    // the forward and in the gradients' products: chunks start at aligned rows, and rows of other
    // sizes can space aligned starts too far apart to fit the limit (BindingTooLarge then, as for
    // the f32 kernel).
    let (m, k, n) = (96, 128, 128);
    // C's 512-byte rows split M; op(B) stored [K, N] in f16 (256-byte rows) splits K.
    assert_eq!(chunks(&ctx, m, &[512, 256]).len(), 3);
    assert_eq!(chunks(&ctx, k, &[256]).len(), 2);
    check_split_products(Device::Wgpu(ctx), (m, k, n), 30, true);
}

#[test]
fn log_softmax_and_cross_entropy_split_by_rows_match_cpu() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    let (rows, v) = (200, 50);
    // 200-byte logit rows and 4-byte targets: chunks of 64 rows, the last of 8.
    assert_eq!(chunks(&ctx, rows, &[200, 4]).len(), 4);
    let gpu = Device::Wgpu(ctx);
    let logits = rand_tensor(3, &[rows, v], -6.0, 6.0, &Device::Cpu);
    // Targets in every chunk, some of them the ignored 0.
    let targets: Vec<u32> = (0..rows).map(|t| ((t * 31) % v) as u32).collect();
    let targets = Tensor::from_u32(targets, &[rows], &Device::Cpu).unwrap();
    check_parity_on(
        &gpu,
        "log_softmax [200, 50] in chunks",
        std::slice::from_ref(&logits),
        |x| ops::log_softmax(&x[0]).unwrap(),
        1e-5,
        2e-5,
    );
    check_parity_on(
        &gpu,
        "cross_entropy [200, 50] ignore 0 in chunks",
        &[logits, targets],
        |x| ops::cross_entropy(&x[0], &x[1], Some(0)).unwrap(),
        1e-5,
        1e-6,
    );
}

#[test]
fn a_row_over_the_binding_limit_is_binding_too_large() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    let gpu = Device::Wgpu(ctx);
    // One row of 4097 floats is 16388 bytes: no chunk of rows can hold it.
    let table = Tensor::zeros(&[2, 4097], &gpu).unwrap();
    let ids = Tensor::from_u32(vec![1, 0], &[2], &gpu).unwrap();
    let e = ops::embedding(&ids, &table).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BindingTooLarge {
                op: "embedding",
                bytes: 16388,
                limit: 16384
            }
        ),
        "{e}"
    );
    let x = Tensor::zeros(&[3, 4097], &gpu).unwrap();
    let e = ops::matmul(&x, &table, false, true).unwrap_err();
    assert!(
        matches!(e, Error::BindingTooLarge { op: "matmul", .. }),
        "{e}"
    );
}

#[test]
fn elementwise_ops_sums_and_adamw_split_by_elements_match_cpu() {
    // The adapter's own alignment (16 or 32 bytes on lavapipe, as wgpu reports it), so that
    // 4-float rows and 1024-float blocks chunk finely.
    let limits = BindingLimits {
        max_binding_bytes: 32768,
        offset_alignment: 16,
    };
    let Some(ctx) = lavapipe_with_binding_limits(limits) else {
        return;
    };
    let (rows, cols) = (5000, 4);
    let n = rows * cols;
    // 80000-byte tensors split: elementwise chunks of floats, sum's 20 blocks of 1024 floats
    // (with their 4-byte partials) and sum_columns' 20 blocks of 256 rows (16-byte output rows).
    assert!(chunks(&ctx, n, &[4]).len() > 1);
    assert!(chunks(&ctx, 20, &[4096, 4]).len() > 1);
    assert!(chunks(&ctx, 20, &[4096, 16]).len() > 1);
    let gpu = Device::Wgpu(ctx);
    let cpu = Device::Cpu;
    let x = rand_tensor(11, &[rows, cols], -3.0, 3.0, &cpu);
    let y = rand_tensor(12, &[rows, cols], -3.0, 3.0, &cpu);
    let b = rand_tensor(13, &[cols], -3.0, 3.0, &cpu);
    type Op = fn(&[Tensor]) -> Tensor;
    let unary: [(&str, Op); 4] = [
        ("silu", |x| ops::silu(&x[0]).unwrap()),
        ("softplus", |x| ops::softplus(&x[0]).unwrap()),
        ("exp", |x| ops::exp(&x[0]).unwrap()),
        ("scale", |x| ops::scale(&x[0], 0.5).unwrap()),
    ];
    for (name, f) in unary {
        check_parity_on(
            &gpu,
            &format!("{name} [5000, 4] in chunks"),
            std::slice::from_ref(&x),
            f,
            1e-5,
            1e-5,
        );
    }
    check_parity_on(
        &gpu,
        "add [5000, 4] + [5000, 4] in chunks",
        &[x.clone(), y.clone()],
        |x| ops::add(&x[0], &x[1]).unwrap(),
        0.0,
        0.0,
    );
    // b's gradient sums 5000 rows (sum_columns in chunks): fp32 rounding of such a sum.
    check_parity_on(
        &gpu,
        "mul [5000, 4] * [4] in chunks",
        &[x.clone(), b],
        |x| ops::mul(&x[0], &x[1]).unwrap(),
        1e-4,
        2e-3,
    );
    check_parity_on(
        &gpu,
        "sum [5000, 4] in chunks",
        std::slice::from_ref(&x),
        |x| ops::sum(&x[0]).unwrap(),
        1e-4,
        1e-2,
    );
    let step = ops::AdamWStep {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
        step: 3,
        grad_scale: 0.5,
    };
    let m = rand_tensor(14, &[rows, cols], -0.1, 0.1, &cpu);
    let v = rand_tensor(15, &[rows, cols], 0.0, 0.1, &cpu);
    let run = |d: &Device| {
        let on = |t: &Tensor| t.to_device(d).unwrap();
        let s = ops::adamw_step(&on(&x), &on(&y), &on(&m), &on(&v), &step).unwrap();
        [s.param, s.m, s.v].map(|t| t.to_vec_f32().unwrap())
    };
    for (k, (g, c)) in run(&gpu).iter().zip(run(&cpu).iter()).enumerate() {
        assert_close(
            &format!("adamw_step output {k} in chunks"),
            g,
            c,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn a_misaligned_or_overrunning_slice_is_refused_naming_the_entry() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    let x = ctx.zeros(4096).unwrap();
    let out = ctx.zeros(4096).unwrap();
    let scale = crsm::backend::wgpu::unary::KERNEL;
    let slices = [
        (4, 64),     // not a multiple of the 256-byte alignment
        (3840, 512), // past the buffer's end
    ];
    for (offset, size) in slices {
        let bad = Binding {
            buffer: &x,
            offset,
            size: Some(size),
        };
        let e = ctx
            .launch_bindings(
                &scale,
                "scale",
                &[16, 0],
                &[bad, Binding::whole(&out)],
                [1, 1, 1],
            )
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { op: "scale", .. }),
            "offset {offset}: {e}"
        );
    }
}

#[test]
fn slices_along_the_first_dimension_are_copies_that_fit_any_binding_limit() {
    let Some(ctx) = small_binding_context() else {
        return;
    };
    // A [1024, 24] weight is 96 KiB, six times the limit: narrow along dim 0 (what a block does to
    // in_proj's halves), its backward and concat along dim 0 are single buffer copies (no binding).
    let gpu = Device::Wgpu(ctx);
    let w = rand_tensor(21, &[1024, 24], -1.0, 1.0, &Device::Cpu);
    for (start, len) in [(0, 512), (512, 512), (100, 37)] {
        check_parity_on(
            &gpu,
            &format!("narrow [1024, 24] dim 0 {start}..+{len} under a 16 KiB limit"),
            std::slice::from_ref(&w),
            |v| ops::narrow(&v[0], 0, start, len).unwrap(),
            0.0,
            0.0,
        );
    }
    let halves = [
        rand_tensor(22, &[512, 24], -1.0, 1.0, &Device::Cpu),
        rand_tensor(23, &[300, 24], -1.0, 1.0, &Device::Cpu),
    ];
    check_parity_on(
        &gpu,
        "concat [512, 24] and [300, 24] along dim 0 under a 16 KiB limit",
        &halves,
        |v| ops::concat(&[&v[0], &v[1]], 0).unwrap(),
        0.0,
        0.0,
    );
}
