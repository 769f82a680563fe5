//! End to end: a 2-layer Mamba stack built from the engine's ops (embedding, blocks, final
//! RMSNorm, tied head, cross-entropy, AdamW) must overfit one 64-token sequence, its loss falling
//! by 90%, on the cpu and on lavapipe. This is the smallest proof that forward, every backward and
//! the optimizer compose into learning.

#[path = "kernels/common.rs"]
#[allow(dead_code)]
mod common;

use crsm::nn::{MambaBlock, MambaDims};
use crsm::ops;
use crsm::rng::Rng;
use crsm::train::{AdamW, AdamWConfig};
use crsm::{Device, Tensor};

const VOCAB: usize = 32;
const SEQ: usize = 64;

struct TinyLm {
    embedding: Tensor,
    blocks: Vec<MambaBlock>,
    norm_f: Tensor,
}

impl TinyLm {
    fn new(device: &Device) -> Self {
        let dims = MambaDims {
            d_model: 32,
            d_inner: 64,
            d_state: 8,
            dt_rank: 2,
            conv_kernel: 4,
        };
        let mut rng = Rng::new(1);
        let embedding = Tensor::from_f32(
            rng.normal_vec(VOCAB * dims.d_model, 0.1),
            &[VOCAB, dims.d_model],
            device,
        )
        .unwrap()
        .as_variable();
        let blocks = (0..2)
            .map(|_| MambaBlock::init(dims, 1e-5, &mut rng, device).unwrap())
            .collect();
        let norm_f = Tensor::full(1.0, &[dims.d_model], device)
            .unwrap()
            .as_variable();
        TinyLm {
            embedding,
            blocks,
            norm_f,
        }
    }

    fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p = vec![&mut self.embedding, &mut self.norm_f];
        for b in &mut self.blocks {
            p.extend(b.parameters_mut());
        }
        p
    }

    /// Mean next-token cross-entropy of `ids` [1, SEQ + 1].
    fn loss(&self, inputs: &Tensor, targets: &Tensor) -> Tensor {
        let mut x = ops::embedding(inputs, &self.embedding).unwrap();
        for b in &self.blocks {
            x = b.forward(&x).unwrap();
        }
        let x = ops::rms_norm(&x, &self.norm_f, 1e-5).unwrap();
        let logits = ops::linear(&x, &self.embedding, None)
            .unwrap()
            .reshape(&[SEQ, VOCAB])
            .unwrap();
        ops::cross_entropy(&logits, targets, None).unwrap()
    }
}

/// Trains for `steps` and returns (first loss, last loss).
fn overfit(device: &Device, steps: usize) -> (f32, f32) {
    let mut model = TinyLm::new(device);
    // A sequence with structure and some surprise: a repeating pattern with a shifting stride.
    let ids: Vec<u32> = (0..=SEQ as u32)
        .map(|t| (t * 7 + t / 5) % VOCAB as u32)
        .collect();
    let inputs = Tensor::from_u32(ids[..SEQ].to_vec(), &[1, SEQ], device).unwrap();
    let targets = Tensor::from_u32(ids[1..].to_vec(), &[SEQ], device).unwrap();
    let mut optimizer = AdamW::new(AdamWConfig {
        beta2: 0.99,
        ..Default::default()
    });
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for step in 0..steps {
        let loss = model.loss(&inputs, &targets);
        last = loss.scalar().unwrap();
        if step == 0 {
            first = last;
        }
        let grads = loss.backward().unwrap();
        optimizer
            .step(model.parameters_mut(), &grads, 1e-2, 1.0)
            .unwrap();
    }
    (first, last)
}

#[test]
fn two_layer_mamba_overfits_a_sequence_on_cpu() {
    let (first, last) = overfit(&Device::Cpu, 150);
    println!("cpu: loss {first:.3} -> {last:.3}");
    assert!(last < 0.1 * first, "loss fell only from {first} to {last}");
}

#[test]
fn two_layer_mamba_overfits_a_sequence_on_lavapipe() {
    let Some(gpu) = common::lavapipe() else {
        return;
    };
    let (first, last) = overfit(&gpu, 150);
    println!("lavapipe: loss {first:.3} -> {last:.3}");
    assert!(last < 0.1 * first, "loss fell only from {first} to {last}");
}
