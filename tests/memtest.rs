//! The engine's memory accounting against counts made by hand from shapes: what the tape keeps
//! with and without `checkpoint`, and the peak of one training step of a small model as
//! `crsm-train memtest` measures it. On the cpu the counters are process-wide, so every test
//! here holds one lock (this file is its own test binary; no other test shares the counters).

use std::sync::Mutex;

use crsm::model::{Backbone, CrsmConfig};
use crsm::train::memtest::measure_training_step;
use crsm::{Device, Tensor, checkpoint, ops};

static COUNTERS: Mutex<()> = Mutex::new(());

fn live() -> u64 {
    Device::Cpu.memory_stats().live_bytes
}

/// k silus in a row on x [n]: the tape keeps every intermediate, checkpointed only the output.
#[test]
fn checkpoint_keeps_only_the_segment_output() {
    let _one = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let (n, k) = (1000u64, 5);
    let x = Tensor::zeros(&[n as usize], &Device::Cpu)
        .unwrap()
        .as_variable();
    let chain = move |x: &Tensor| -> crsm::Result<Tensor> {
        let mut y = x.clone();
        for _ in 0..k {
            y = ops::silu(&y)?;
        }
        Ok(y)
    };

    let before = live();
    let plain = chain(&x).unwrap();
    // k outputs of 4n bytes each, all kept: each is the next silu's saved input (or the result).
    assert_eq!(live() - before, k * 4 * n);
    drop(plain);
    assert_eq!(live(), before);

    let out = checkpoint(&[&x], &[], move |xs| Ok(vec![chain(&xs[0])?])).unwrap();
    // The output (4n) and the node's one-element hub (4).
    assert_eq!(live() - before, 4 * n + 4);
    let grads = ops::sum(&out[0]).unwrap().backward().unwrap();
    assert_eq!(grads.get(&x).unwrap().shape(), [n as usize]);
}

/// One layer, d 8, vocab 4096: the embedding dwarfs every activation, so the step's peak is in
/// AdamW's update of the embedding, when the parameters, both moments, every gradient and the
/// embedding's new value and moments are alive at once.
#[test]
fn training_step_peak_matches_a_count_by_hand() {
    let _one = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let (v, d) = (4096u64, 8u64);
    let mut c = CrsmConfig::new(v as usize, d as usize, 1);
    c.state_size = 2; // N
    c.expand = 2; // E = 16
    c.conv_kernel = 4; // K
    let mut model = Backbone::init(c, 1, &Device::Cpu).unwrap();
    let (e, n, k, r) = (16u64, 2u64, 4u64, 1u64); // r = dt_rank = ceil(d / 16)
    let embedding = v * d;
    let block = d // norm
        + 2 * e * d // in_proj
        + e * k + e // conv1d weight [E, 1, K] and bias
        + (r + 2 * n) * e // x_proj
        + e * r + e // dt_proj weight and bias
        + e * n + e // A_log, D
        + d * e; // out_proj
    let params = 4 * (embedding + block + d); // + norm_f; the head is tied
    let (batch, seq) = (1u64, 2u64);
    let ids = 2 * 4 * batch * seq; // inputs and targets, u32

    let before = live();
    let m = measure_training_step(&mut model, batch as usize, seq as usize).unwrap();
    assert_eq!(m.parameters, params);
    assert_eq!(m.optimizer_state, 2 * params);
    assert_eq!(m.resident - before, 2 * params + ids, "moments and ids");
    let resident = before + 2 * params + ids;
    // Gradients (one per parameter) + the embedding's new value, m and v.
    assert_eq!(m.optimizer_peak, resident + params + 3 * 4 * embedding);
    assert_eq!(m.peak, m.optimizer_peak);
    assert!(m.backward_peak < m.peak && m.forward_peak < m.peak, "{m:?}");
}

/// The same step with the applications in checkpointed segments needs less memory.
#[test]
fn checkpointing_lowers_the_step_peak() {
    let _one = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = CrsmConfig::new(64, 32, 4);
    c.crsm_recurrent_depth = 2;
    c.crsm_fusion = true;
    let measure = |segments: usize| {
        let mut model = Backbone::init(c.clone(), 3, &Device::Cpu).unwrap();
        model.set_checkpoint_segments(segments);
        measure_training_step(&mut model, 2, 64).unwrap()
    };
    let plain = measure(0);
    let checkpointed = measure(3);
    assert_eq!(plain.resident, checkpointed.resident);
    let what = format!("plain {plain:?}\ncheckpointed {checkpointed:?}");
    // The tape after the forward: every application's activations vs 3 segment boundaries.
    let forward = |m: &crsm::train::memtest::StepMemory| m.forward_peak - m.resident;
    assert!(forward(&checkpointed) * 4 < forward(&plain), "{what}");
    // The backward holds one segment's recomputed activations at a time.
    assert!(checkpointed.peak < plain.peak, "{what}");
}

/// The meta device counts what the cpu allocates: one step of the same model on both, each
/// phase's peak above what was live before the model was made, within 5% (the contract asks the
/// meta kernels for the cpu's result sizes, so in practice they are equal).
#[test]
fn meta_device_counts_what_the_cpu_step_allocates() {
    let _one = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let mut plain = CrsmConfig::new(300, 32, 2);
    plain.state_size = 8;
    let mut recurrent = CrsmConfig::new(128, 24, 3);
    recurrent.crsm_recurrent_depth = 2;
    recurrent.crsm_fusion = true;
    for (config, segments, batch, seq) in [(plain, 0, 2, 80), (recurrent, 2, 3, 70)] {
        let step = |device: &Device| {
            let base = device.memory_stats().live_bytes;
            let mut model = Backbone::init(config.clone(), 5, device).unwrap();
            model.set_checkpoint_segments(segments);
            let m = measure_training_step(&mut model, batch, seq).unwrap();
            [m.forward_peak, m.backward_peak, m.optimizer_peak, m.peak].map(|b| b - base)
        };
        let real = step(&Device::Cpu);
        let meta = step(&Device::meta());
        for (r, m) in real.iter().zip(&meta) {
            let off = (*r as f64 - *m as f64).abs() / *r as f64;
            assert!(off <= 0.05, "real {real:?} meta {meta:?}");
        }
        eprintln!("real {real:?}\nmeta {meta:?}");
    }
}

/// A model far larger than any machine is counted on the meta device in well under a second: its
/// parameters are never filled and its kernels never run.
#[test]
fn meta_device_counts_a_huge_model_without_allocating_it() {
    let mut c = CrsmConfig::new(50_000, 16_384, 4);
    c.state_size = 16;
    let start = std::time::Instant::now();
    let device = Device::meta();
    let mut model = Backbone::init(c, 0, &device).unwrap();
    let m = measure_training_step(&mut model, 2, 128).unwrap();
    assert!(m.parameters > 10 << 30, "{m:?}");
    assert!(m.peak > 4 * m.parameters, "{m:?}");
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}
