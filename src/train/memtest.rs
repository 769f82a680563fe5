//! The device memory of one training micro-step, from the engine's own byte accounting (the wgpu
//! pool's `MemoryStats`, the cpu backend's storage counters): what `crsm-train memtest` reports
//! before a run is started. Counts are of tensor bytes (f32/u32 = 4 bytes per element; wgpu
//! buffers round up to 4 bytes), so a model's numbers follow from its shapes.

use crate::error::Result;
use crate::model::Backbone;
use crate::tensor::Tensor;
use crate::train::random_step::{StepPhase, random_tokens, training_step};
use crate::train::{AdamW, AdamWConfig};

/// Bytes of one step. `peak` = `resident` + the most the step added on top.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepMemory {
    /// The model's parameters.
    pub parameters: u64,
    /// AdamW's two moments (2 x parameters).
    pub optimizer_state: u64,
    /// Everything live when the step starts: parameters, moments and the token ids (and, on the
    /// cpu, any other tensor alive in the process).
    pub resident: u64,
    /// The most live bytes during the forward, the backward and the optimizer update.
    pub forward_peak: u64,
    pub backward_peak: u64,
    pub optimizer_peak: u64,
    /// The step's peak (the largest of the three).
    pub peak: u64,
}

impl StepMemory {
    /// What the step itself needs on top of what stays resident: the tape's activations, the
    /// gradients, the optimizer's fresh tensors.
    pub fn transient(&self) -> u64 {
        self.peak - self.resident
    }
}

/// Runs one training micro-step of `model` on random tokens [batch, seq] at its
/// `checkpoint_segments` and measures it. The optimizer's moments are made (zero) before the
/// measurement, so this is a steady-state step, not the first one. The model's parameters are
/// updated (it is a real step).
pub fn measure_training_step(model: &mut Backbone, batch: usize, seq: usize) -> Result<StepMemory> {
    let device = model.device();
    let parameters: u64 = model.parameters().iter().map(|p| bytes(p)).sum();
    let mut optimizer = AdamW::new(AdamWConfig::default());
    let moments = model
        .parameters()
        .iter()
        .map(|p| {
            Ok((
                Tensor::zeros(p.shape(), &device)?,
                Tensor::zeros(p.shape(), &device)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    optimizer.restore(0, moments);
    let (inputs, targets) = random_tokens(model.config.vocab_size, batch, seq, 7, &device)?;

    device.reset_peak();
    let resident = device.memory_stats().live_bytes;
    let mut phase_peaks = [0u64; 3];
    training_step(model, &mut optimizer, &inputs, &targets, 1e-4, |phase| {
        let i = match phase {
            StepPhase::Forward => 0,
            StepPhase::Backward => 1,
            StepPhase::Optimizer => 2,
        };
        phase_peaks[i] = device.memory_stats().peak_live_bytes;
        device.reset_peak();
    })?;
    let [forward_peak, backward_peak, optimizer_peak] = phase_peaks;
    Ok(StepMemory {
        parameters,
        optimizer_state: 2 * parameters,
        resident,
        forward_peak,
        backward_peak,
        optimizer_peak,
        peak: forward_peak.max(backward_peak).max(optimizer_peak),
    })
}

fn bytes(t: &Tensor) -> u64 {
    t.elem_count() as u64 * 4
}
