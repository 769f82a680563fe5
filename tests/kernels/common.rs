//! Shared helpers for kernel tests: the lavapipe device (and the CUDA one, feature `cuda`), deterministic random data, the one
//! comparison helper, and the finite-difference gradient check.

use std::sync::Arc;

use crsm::backend::{AdapterKind, BindingLimits, WgpuContext};
use crsm::{Device, Tensor};

#[path = "../support/lavapipe.rs"]
mod lavapipe_device;
pub use lavapipe_device::lavapipe;

/// A fresh lavapipe context whose kernels are held to `limits` (see `BindingLimits`), so tiny
/// tensors take the chunked launches; None (or a panic under CI) as `lavapipe`.
pub fn lavapipe_with_binding_limits(limits: BindingLimits) -> Option<Arc<WgpuContext>> {
    lavapipe()?;
    Some(WgpuContext::open_with_binding_limits(AdapterKind::Software, limits).unwrap())
}

/// The CUDA device 0, opened once per test process (feature `cuda`). Without one the CUDA half of
/// a test skips (one line on stderr), unless `CRSM_REQUIRE_CUDA=1`, where it fails.
#[cfg(feature = "cuda")]
pub fn cuda() -> Option<Device> {
    use std::sync::OnceLock;
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    let opened = DEVICE
        .get_or_init(|| Device::open(crsm::DeviceRequest::Cuda(0)).map_err(|e| e.to_string()));
    match opened {
        Ok(device) => Some(device.clone()),
        Err(reason) => {
            if std::env::var("CRSM_REQUIRE_CUDA").is_ok_and(|v| v == "1") {
                panic!("CRSM_REQUIRE_CUDA=1, but no CUDA device opens: {reason}");
            }
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let line = format!("CUDA halves of the kernel tests skipped: {reason}\n");
                let _ = std::io::stderr().write_all(line.as_bytes());
            });
            None
        }
    }
}

/// Every device the kernels are checked on besides the cpu: lavapipe, and with the `cuda`
/// feature the CUDA device when one opens.
pub fn gpus() -> Vec<Device> {
    let devices = lavapipe().into_iter();
    #[cfg(feature = "cuda")]
    let devices = devices.chain(cuda());
    devices.collect()
}

/// Deterministic uniform values in [lo, hi) (splitmix64), so failures reproduce.
pub fn rand_vec(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

pub fn rand_tensor(seed: u64, shape: &[usize], lo: f32, hi: f32, device: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(rand_vec(seed, n, lo, hi), shape, device).unwrap()
}

/// Asserts |got - want| <= atol + rtol * |want| elementwise (llm.c's tolerance rule); on failure
/// prints the first differing values and the largest difference.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut bad = Vec::new();
    let mut max_diff = 0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        max_diff = max_diff.max(d);
        // NaN differences fail too.
        if d.is_nan() || d > atol + rtol * w.abs() {
            bad.push((i, g, w));
        }
    }
    if !bad.is_empty() {
        let first: Vec<String> = bad
            .iter()
            .take(8)
            .map(|(i, g, w)| format!("[{i}] got {g} want {w}"))
            .collect();
        panic!(
            "{what}: {} of {} values differ (rtol {rtol}, atol {atol}); max |diff| {max_diff}; first: {}",
            bad.len(),
            got.len(),
            first.join(", ")
        );
    }
}

/// Tensor version of `assert_close`.
#[track_caller]
pub fn assert_tensors_close(what: &str, got: &Tensor, want: &Tensor, rtol: f32, atol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    assert_close(
        what,
        &got.to_vec_f32().unwrap(),
        &want.to_vec_f32().unwrap(),
        rtol,
        atol,
    );
}

/// Checks the tape's gradients of `f` against central differences on the cpu backend.
///
/// The scalar is `L = sum_j r_j f(x)_j` with fixed random weights r (so every output element
/// matters), accumulated in f64 on the host. The backend computes in f32, so each difference
/// carries rounding of about 6e-8 * sum|r_j f_j| / (2 eps); with eps = 1e-2 * max(1, |x|) that is
/// near 1e-5 for these sizes, while the truncation error is O(eps^2 f''') ~ 1e-4. Hence the
/// tolerance atol 2e-3 + rtol 2e-2: a wrong derivative is off by O(1).
///
/// A gradient below atol passes whatever its sign, so the check also fails unless every input's
/// largest gradient, analytic and finite-difference alike, is at least 10 x atol (2e-2):
/// then a sign flip or a dropped term of that size is off by far more than the tolerance. A test
/// whose input fails this must scale its inputs (or the model) until the gradient is that large.
/// The one exception is an input the output does not move with at all (every finite difference
/// exactly 0, e.g. a softmax over one element or an empty slice): its gradient must be exactly 0.
pub fn check_gradients(what: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) {
    check_gradients_tol(what, inputs, f, 2e-2, 2e-3)
}

fn check_gradients_tol(
    what: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Tensor,
    rtol: f32,
    atol: f32,
) {
    let vars: Vec<Tensor> = inputs.iter().map(|t| t.as_variable()).collect();
    let out = f(&vars);
    let r = rand_vec(999, out.elem_count(), -1.0, 1.0);
    let seed = Tensor::from_f32(r.clone(), out.shape(), &Device::Cpu).unwrap();
    let grads = out.backward_with(&seed).unwrap();
    let loss = |xs: &[Tensor]| -> f64 {
        let _off = crsm::no_grad();
        let o = f(xs).to_vec_f32().unwrap();
        o.iter().zip(&r).map(|(&a, &b)| a as f64 * b as f64).sum()
    };
    let mut too_small = Vec::new();
    for (k, var) in vars.iter().enumerate() {
        let Some(analytic) = grads.get(var) else {
            panic!("{what}: no gradient for input {k}");
        };
        let analytic = analytic.to_vec_f32().unwrap();
        let base = inputs[k].to_vec_f32().unwrap();
        let mut numeric = vec![0f32; base.len()];
        for i in 0..base.len() {
            let eps = 1e-2 * base[i].abs().max(1.0);
            let probe = |delta: f32| {
                let mut v = base.clone();
                v[i] += delta;
                let mut xs: Vec<Tensor> = inputs.to_vec();
                xs[k] = Tensor::from_f32(v, inputs[k].shape(), &Device::Cpu).unwrap();
                loss(&xs)
            };
            numeric[i] = ((probe(eps) - probe(-eps)) / (2.0 * eps as f64)) as f32;
        }
        assert_close(
            &format!("{what}: d/d input {k}"),
            &analytic,
            &numeric,
            rtol,
            atol,
        );
        let largest = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let (a, n) = (largest(&analytic), largest(&numeric));
        if n == 0.0 {
            // The output does not move with this input (an empty slice, a softmax over one
            // element): then nothing but an exact zero is right.
            assert!(
                a == 0.0,
                "{what}: d/d input {k} is {a:e} where the output ignores it"
            );
        } else if a.min(n) < 10.0 * atol {
            too_small.push(format!(
                "input {k} (max |analytic| {a:.3e}, max |finite difference| {n:.3e})"
            ));
        }
    }
    assert!(
        too_small.is_empty(),
        "{what}: gradients too small to check, below 10 x atol = {:.1e} so a dropped or \
         sign-flipped one would pass (scale the input or the model up): {}",
        10.0 * atol,
        too_small.join("; ")
    );
}

/// Runs `f` on the cpu and on each of `gpus()` (lavapipe; CUDA with the `cuda` feature) with the
/// same inputs and compares the outputs and the gradients of every input (seeded with the same
/// random cotangent).
pub fn check_parity(
    what: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Tensor,
    rtol: f32,
    atol: f32,
) {
    for gpu in gpus() {
        check_parity_on(&gpu, what, inputs, &f, rtol, atol)
    }
}

/// `check_parity` against a given device.
pub fn check_parity_on(
    gpu: &Device,
    what: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Tensor,
    rtol: f32,
    atol: f32,
) {
    let run = |xs: Vec<Tensor>| {
        let vars: Vec<Tensor> = xs
            .iter()
            .map(|t| {
                if t.dtype() == crsm::DType::F32 {
                    t.as_variable()
                } else {
                    t.clone()
                }
            })
            .collect();
        let out = f(&vars);
        let seed = Tensor::from_f32(
            rand_vec(77, out.elem_count(), -1.0, 1.0),
            out.shape(),
            &out.device(),
        )
        .unwrap();
        let grads = out.backward_with(&seed).unwrap();
        let gs: Vec<Option<Vec<f32>>> = vars
            .iter()
            .map(|v| grads.get(v).map(|g| g.to_vec_f32().unwrap()))
            .collect();
        (out.to_vec_f32().unwrap(), gs)
    };
    let (cpu_out, cpu_grads) = run(inputs.to_vec());
    let (gpu_out, gpu_grads) = run(inputs.iter().map(|t| t.to_device(gpu).unwrap()).collect());
    assert_close(
        &format!("{what}: forward {} vs cpu", gpu.name()),
        &gpu_out,
        &cpu_out,
        rtol,
        atol,
    );
    for (k, (c, g)) in cpu_grads.iter().zip(&gpu_grads).enumerate() {
        match (c, g) {
            (Some(c), Some(g)) => assert_close(
                &format!("{what}: grad {k} {} vs cpu", gpu.name()),
                g,
                c,
                rtol,
                atol,
            ),
            (None, None) => {}
            _ => panic!("{what}: grad {k} exists on one device only"),
        }
    }
}

/// A model with CRSM additions whose identity-initialised adapters and even fusion are perturbed
/// (seeded), so each carries a gradient that matters. Used by the model and checkpointing tests.
#[allow(dead_code)]
pub fn perturbed_crsm_model(
    config: crsm::model::CrsmConfig,
    device: &Device,
) -> crsm::model::Backbone {
    let mut model = crsm::model::Backbone::init(config, 5, device).unwrap();
    let mut seed = 100;
    let mut perturb = |t: &mut Tensor, center: f32, spread: f32| {
        seed += 1;
        let values = rand_vec(seed, t.elem_count(), center - spread, center + spread);
        *t = Tensor::from_f32(values, t.shape(), device)
            .unwrap()
            .as_variable();
    };
    perturb(model.fusion.as_mut().unwrap(), 0.0, 1.0);
    for a in &mut model.adapters {
        perturb(&mut a.scale, 1.0, 0.3);
        perturb(&mut a.bias, 0.0, 0.3);
    }
    for b in &mut model.blocks {
        perturb(b.in_proj_bias.as_mut().unwrap(), 0.0, 0.3);
        perturb(b.out_proj_bias.as_mut().unwrap(), 0.0, 0.3);
    }
    model
}
