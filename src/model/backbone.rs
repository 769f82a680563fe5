//! The backbone: embedding, the Mamba blocks, norm_f and the LM head, computed exactly as HF
//! transformers' `MambaForCausalLM` (modeling_mamba.py) when the CRSM additions are off:
//!
//! ```text
//! x = embeddings[ids]                                   [B, L, D]
//! for pass p in 0..depth:                               depth = crsm_recurrent_depth (HF: 1)
//!     x = adapter_p(x)                                  when crsm_depth_adapters
//!     for block i: x = x + Mixer_i(RMSNorm_i(x))        one "application" = (p, i); residual in f32
//! h = fusion ? layer_mix(stack of every application's x, fusion logits) : x     (HF: the last x)
//! logits = lm_head(RMSNorm_f(h))                        lm_head = embeddings when tied
//! ```
//! Three ways to run it: `forward` (parallel, for training and scoring), `prefill` (the same, also
//! leaving a `State` for decoding) and `step` (one token per row, O(1) in sequence length).
//! `prefill` continues from whatever the state holds, so a prompt can be fed in chunks.

use std::path::Path;

use crate::autograd;
use crate::backend::Device;
use crate::error::{Error, Result, shape_err};
use crate::io;
use crate::model::adapter::DepthAdapter;
use crate::model::config::CrsmConfig;
use crate::model::weights::{self, Loader};
use crate::nn::MambaBlock;
use crate::ops;
use crate::rng::Rng;
use crate::state::{LayerState, State};
use crate::tensor::{DType, Tensor};

/// The weights of the model; the recurrent state lives in `State`. Cloning clones handles.
#[derive(Clone)]
pub struct Backbone {
    pub config: CrsmConfig,
    /// [V, D], `backbone.embeddings.weight`.
    pub embeddings: Tensor,
    /// The physical blocks, `backbone.layers.{i}`.
    pub blocks: Vec<MambaBlock>,
    /// [D], `backbone.norm_f.weight`.
    pub norm_f: Tensor,
    /// [V, D], `lm_head.weight`; None when tied to the embeddings (`tie_word_embeddings`).
    pub lm_head: Option<Tensor>,
    /// [layers * depth], `crsm.fusion.logits`, when `crsm_fusion`.
    pub fusion: Option<Tensor>,
    /// One per pass, `crsm.adapters.{p}`, when `depth_adapters()`; empty otherwise.
    pub adapters: Vec<DepthAdapter>,
    /// When > 0, the parallel forward without a state (training) splits the block applications
    /// into this many contiguous segments under `autograd::checkpoint` (see `set_checkpoint_segments`).
    checkpoint_segments: usize,
}

impl Backbone {
    /// A fresh model from a seed: blocks as `MambaBlock::init_with_bias` (HF's init), embeddings
    /// (and an untied head) normal with std `initializer_range`, norms 1, fusion logits 0 (an
    /// even mix, so every layer's output gets gradient from the first step), adapters identity.
    pub fn init(config: CrsmConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate("<CrsmConfig given to Backbone::init>")?;
        let mut rng = Rng::new(seed);
        let (v, d) = (config.vocab_size, config.hidden_size);
        let std = config.initializer_range();
        let var = |data: Vec<f32>, shape: &[usize]| -> Result<Tensor> {
            Ok(Tensor::from_f32(data, shape, device)?.as_variable())
        };
        let embeddings = Tensor::init_variable(&[v, d], device, || rng.normal_vec(v * d, std))?;
        let blocks = (0..config.num_hidden_layers)
            .map(|_| {
                let eps = config.layer_norm_epsilon as f32;
                MambaBlock::init_with_bias(
                    config.block_dims(),
                    eps,
                    config.use_bias,
                    config.use_conv_bias,
                    &mut rng,
                    device,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(Tensor::init_variable(&[v, d], device, || {
                rng.normal_vec(v * d, std)
            })?)
        };
        let fusion = if config.crsm_fusion {
            Some(var(
                vec![0.0; config.applications()],
                &[config.applications()],
            )?)
        } else {
            None
        };
        let adapters = if config.depth_adapters() {
            (0..config.crsm_recurrent_depth)
                .map(|_| DepthAdapter::identity(d, device))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(Backbone {
            norm_f: var(vec![1.0; d], &[d])?,
            config,
            embeddings,
            blocks,
            lm_head,
            fusion,
            adapters,
            checkpoint_segments: 0,
        })
    }

    /// `dir/config.json` and the safetensors weights in `dir` (`model.safetensors` or a sharded
    /// index; f16/bf16 are widened to f32). Every tensor must be present with the shape the
    /// config implies, and no other tensor may be.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = CrsmConfig::from_json_file(&dir.join("config.json"))?;
        let map = io::load_safetensors_dir(dir)?;
        let mut l = Loader::new(map, dir.display().to_string(), device);
        let (v, d) = (config.vocab_size, config.hidden_size);
        let embeddings = l.take(weights::EMBEDDINGS, &[v, d])?;
        let blocks = (0..config.num_hidden_layers)
            .map(|i| weights::load_block(&mut l, i, &config))
            .collect::<Result<Vec<_>>>()?;
        let norm_f = l.take(weights::NORM_F, &[d])?;
        let lm_head = if config.tie_word_embeddings {
            l.accept_tied_head(&embeddings)?;
            None
        } else {
            Some(l.take(weights::LM_HEAD, &[v, d])?)
        };
        let fusion = l.take_if(
            config.crsm_fusion,
            weights::FUSION,
            &[config.applications()],
        )?;
        let adapters = if config.depth_adapters() {
            (0..config.crsm_recurrent_depth)
                .map(|p| weights::load_adapter(&mut l, p, d))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        l.finish()?;
        Ok(Backbone {
            config,
            embeddings,
            blocks,
            norm_f,
            lm_head,
            fusion,
            adapters,
            checkpoint_segments: 0,
        })
    }

    /// Writes `dir/config.json` and `dir/model.safetensors` (f32, HF names and layouts; a tied
    /// model has no `lm_head.weight`), each through a temporary file and a rename. Loading the
    /// result gives bit-identical weights.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if let Some((name, t)) = self
            .named_parameters()
            .into_iter()
            .find(|(_, t)| t.dtype() != DType::F32)
        {
            return Err(Error::InvalidArgument {
                op: "Backbone::save",
                detail: format!(
                    "{name} is {:?}: an inference copy (with_bf16_weights) is not a checkpoint; save the f32 model",
                    t.dtype()
                ),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let map = weights::to_tensor_map(&self.named_parameters())?;
        io::save_safetensors(&dir.join("model.safetensors"), &map)?;
        io::write_atomic(
            &dir.join("config.json"),
            self.config.to_json_string()?.as_bytes(),
        )
    }

    /// A copy for inference whose matmul weights (every block's in_proj, x_proj, dt_proj and
    /// out_proj, and the head) are stored in bf16 and read as such by `matmul`: half the bytes a
    /// decode step reads, f32 arithmetic. The embedding table stays f32 for the lookup (a tied
    /// head gets its own bf16 copy). For generation only: it has no gradients, and `save` refuses
    /// it (its weights are not f32).
    pub fn with_bf16_weights(&self) -> Result<Backbone> {
        let mut model = self.clone();
        for block in &mut model.blocks {
            for w in [
                &mut block.in_proj,
                &mut block.x_proj,
                &mut block.dt_proj,
                &mut block.out_proj,
            ] {
                *w = ops::to_bf16(w)?;
            }
        }
        model.lm_head = Some(ops::to_bf16(
            self.lm_head.as_ref().unwrap_or(&self.embeddings),
        )?);
        Ok(model)
    }

    pub fn device(&self) -> Device {
        self.embeddings.device()
    }

    /// Gradient checkpointing for training (`TrainingConfig::checkpoint_segments`): with n > 0 the
    /// block applications of `forward` and `residuals` run as n contiguous segments (capped at the
    /// number of applications) whose activations are recomputed in the backward pass, so the tape
    /// keeps only each segment's input and outputs. Results and gradients are unchanged; 0 = off.
    /// Prefill and step (no tape) ignore it.
    pub fn set_checkpoint_segments(&mut self, n: usize) {
        self.checkpoint_segments = n;
    }

    pub fn checkpoint_segments(&self) -> usize {
        self.checkpoint_segments
    }

    // ---- parameters ------------------------------------------------------------------------------

    /// Every parameter with its checkpoint name, in a fixed order (the order of `parameters_mut`).
    pub fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        let mut v = vec![(weights::EMBEDDINGS.to_string(), &self.embeddings)];
        for (i, block) in self.blocks.iter().enumerate() {
            v.extend(
                weights::block_tensors(block)
                    .into_iter()
                    .map(|(suffix, t)| (weights::layer_name(i, suffix), t)),
            );
        }
        v.push((weights::NORM_F.to_string(), &self.norm_f));
        if let Some(head) = &self.lm_head {
            v.push((weights::LM_HEAD.to_string(), head));
        }
        if let Some(f) = &self.fusion {
            v.push((weights::FUSION.to_string(), f));
        }
        for (p, a) in self.adapters.iter().enumerate() {
            v.push((weights::adapter_name(p, "scale"), &a.scale));
            v.push((weights::adapter_name(p, "bias"), &a.bias));
        }
        v
    }

    pub fn parameters(&self) -> Vec<&Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// The parameters in `named_parameters` order, for an optimizer to replace.
    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut v = vec![&mut self.embeddings];
        for block in &mut self.blocks {
            v.extend(block.parameters_mut());
        }
        v.push(&mut self.norm_f);
        v.extend(&mut self.lm_head);
        v.extend(&mut self.fusion);
        for a in &mut self.adapters {
            v.push(&mut a.scale);
            v.push(&mut a.bias);
        }
        v
    }

    // ---- running -----------------------------------------------------------------------------------

    /// ids: U32 [B, L] -> logits [B, L, V], from an empty sequence.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        check_ids("Backbone::forward", ids, 2)?;
        let residuals = self
            .run(
                ops::embedding(ids, &self.embeddings)?,
                None,
                self.fusion.is_some(),
            )?
            .0;
        self.head(residuals)
    }

    /// The residual stream after every block application (pass-major), each [B, L, D], from an
    /// empty sequence: HF's `output_hidden_states` without the final norm.
    pub fn residuals(&self, ids: &Tensor) -> Result<Vec<Tensor>> {
        check_ids("Backbone::residuals", ids, 2)?;
        Ok(self
            .run(ops::embedding(ids, &self.embeddings)?, None, true)?
            .0)
    }

    /// Zero states for `batch` rows: one `LayerState` per block application.
    pub fn new_state(&self, batch: usize) -> Result<State> {
        let c = &self.config;
        State::zeros(
            c.applications(),
            batch,
            c.conv_kernel,
            c.d_inner(),
            c.state_size,
            &self.device(),
        )
    }

    /// Parallel forward over ids [B, L] that continues from `state` (zeros for a new sequence) and
    /// leaves it after the last token: logits [B, L, V]. The state is only changed on success.
    pub fn prefill(&self, ids: &Tensor, state: &mut State) -> Result<Tensor> {
        self.continue_with("Backbone::prefill", ids, state, false)
    }

    /// `prefill` that computes the head on the last position only: logits [B, V] for the token
    /// after ids [B, L]. What generation needs after a prompt: no [L, V] product, no [L, V] read.
    pub fn prefill_last(&self, ids: &Tensor, state: &mut State) -> Result<Tensor> {
        let logits = self.continue_with("Backbone::prefill_last", ids, state, true)?;
        logits.reshape(&[ids.dim(0), self.config.vocab_size])
    }

    /// The stack over ids [B, L] from `state`, which it leaves after the last token (changed only
    /// on success), and the head on every position or, when `last_only`, the last: [B, L or 1, V].
    fn continue_with(
        &self,
        op: &'static str,
        ids: &Tensor,
        state: &mut State,
        last_only: bool,
    ) -> Result<Tensor> {
        check_ids(op, ids, 2)?;
        self.check_state(op, state, ids.dim(0))?;
        let l = ids.dim(1);
        let (mut residuals, layers) = self.run(
            ops::embedding(ids, &self.embeddings)?,
            Some(state),
            self.fusion.is_some(),
        )?;
        if last_only && l > 1 {
            residuals = residuals
                .iter()
                .map(|r| ops::narrow(r, 1, l - 1, 1))
                .collect::<Result<Vec<_>>>()?;
        }
        let logits = self.head(residuals)?;
        state.layers = layers;
        state.position += l;
        Ok(logits)
    }

    /// One token per batch row, ids U32 [B] -> logits [B, V], advancing `state` by one position.
    /// The rows are independent sequences (each may be at its own position): the weights are read
    /// once for all of them. Each block runs `MambaBlock::step` (the fused kernel, states updated
    /// in place, where the device has it and no gradient is recorded). A failure part-way leaves
    /// the state part-way: take a snapshot first where that matters.
    pub fn step(&self, ids: &Tensor, state: &mut State) -> Result<Tensor> {
        Ok(self.step_inner(ids, state, false)?.0)
    }

    /// `step` that also returns every block application's residual output [B, D] (pass-major):
    /// the latents of this position, as `residuals` gives them for a whole sequence.
    pub fn step_latents(&self, ids: &Tensor, state: &mut State) -> Result<(Tensor, Vec<Tensor>)> {
        self.step_inner(ids, state, true)
    }

    fn step_inner(
        &self,
        ids: &Tensor,
        state: &mut State,
        keep_all: bool,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        check_ids("Backbone::step", ids, 1)?;
        self.check_state("Backbone::step", state, ids.dim(0))?;
        let fused = self.fusion.is_some();
        let mut x = ops::embedding(ids, &self.embeddings)?; // [B, D]
        let mut residuals = Vec::new();
        for (app, block, adapter) in self.applications() {
            if let Some(a) = adapter {
                x = a.forward(&x)?;
            }
            x = block.step(&x, &mut state.layers[app])?;
            if fused || keep_all {
                residuals.push(x.clone());
            }
        }
        let logits = if fused {
            self.head(residuals.clone())?
        } else {
            self.head(vec![x])?
        };
        state.position += 1;
        Ok((logits, if keep_all { residuals } else { Vec::new() }))
    }

    /// The block applications in order: (index into `State::layers`, block, the pass's adapter
    /// when this is the first block of a pass).
    fn applications(&self) -> impl Iterator<Item = (usize, &MambaBlock, Option<&DepthAdapter>)> {
        let layers = self.blocks.len();
        (0..self.config.crsm_recurrent_depth).flat_map(move |p| {
            self.blocks.iter().enumerate().map(move |(i, block)| {
                let adapter = if i == 0 { self.adapters.get(p) } else { None };
                (p * layers + i, block, adapter)
            })
        })
    }

    /// Runs the stack on embedded tokens x [B, L, D]. Returns the residual outputs (every
    /// application's when `keep_all`, else the last) and, when a state was given, the states after x.
    fn run(
        &self,
        mut x: Tensor,
        state: Option<&State>,
        keep_all: bool,
    ) -> Result<(Vec<Tensor>, Vec<LayerState>)> {
        if state.is_none() && self.checkpoint_segments > 0 {
            return Ok((self.run_segments(x, keep_all)?, Vec::new()));
        }
        let mut residuals = Vec::new();
        let mut layers = Vec::new();
        for (app, block, adapter) in self.applications() {
            if let Some(a) = adapter {
                x = a.forward(&x)?;
            }
            x = match state {
                None => block.forward(&x)?,
                Some(s) => {
                    let prev = &s.layers[app];
                    let o = block.forward_with_state(&x, &prev.conv, &prev.ssm)?;
                    layers.push(LayerState {
                        conv: o.conv_state,
                        ssm: o.ssm_state,
                    });
                    o.out
                }
            };
            if keep_all {
                residuals.push(x.clone());
            }
        }
        if !keep_all {
            residuals.push(x);
        }
        Ok((residuals, layers))
    }

    /// `run` without a state, as `checkpoint_segments` checkpointed segments of applications.
    fn run_segments(&self, mut x: Tensor, keep_all: bool) -> Result<Vec<Tensor>> {
        let total = self.config.applications();
        let n = self.checkpoint_segments.min(total);
        let mut residuals = Vec::new();
        for s in 0..n {
            // Contiguous, as even as possible: segment s covers [s*total/n, (s+1)*total/n).
            let range = s * total / n..(s + 1) * total / n;
            let params: Vec<Tensor> = self
                .applications()
                .filter(|(app, ..)| range.contains(app))
                .flat_map(|(_, block, adapter)| {
                    let mut p: Vec<Tensor> = block.parameters().into_iter().cloned().collect();
                    if let Some(a) = adapter {
                        p.extend([a.scale.clone(), a.bias.clone()]);
                    }
                    p
                })
                .collect();
            let model = self.clone();
            let outs = autograd::checkpoint(&[&x], &params.iter().collect::<Vec<_>>(), {
                let range = range.clone();
                move |xs| model.run_range(xs[0].clone(), range.clone(), keep_all)
            })?;
            x = outs.last().cloned().ok_or_else(|| Error::InvalidArgument {
                op: "Backbone::run_segments",
                detail: format!("segment {range:?} produced no output"),
            })?;
            if keep_all {
                residuals.extend(outs);
            }
        }
        if !keep_all {
            residuals.push(x);
        }
        Ok(residuals)
    }

    /// The applications in `range` on x without a state: each one's output when `keep_all`, else
    /// the last.
    fn run_range(
        &self,
        mut x: Tensor,
        range: std::ops::Range<usize>,
        keep_all: bool,
    ) -> Result<Vec<Tensor>> {
        let mut outs = Vec::new();
        for (_, block, adapter) in self.applications().filter(|(app, ..)| range.contains(app)) {
            if let Some(a) = adapter {
                x = a.forward(&x)?;
            }
            x = block.forward(&x)?;
            if keep_all {
                outs.push(x.clone());
            }
        }
        if !keep_all {
            outs.push(x);
        }
        Ok(outs)
    }

    /// norm_f and lm_head over the fused (or last) residual stream [..., D] -> logits [..., V].
    /// `residuals` holds one latent per block application (the last alone when fusion is off);
    /// the planner calls it on predicted latents, which is why the latent is the residual stream.
    pub fn head(&self, residuals: Vec<Tensor>) -> Result<Tensor> {
        let h = match &self.fusion {
            Some(logits) => {
                // Stack the applications' outputs along a new leading axis for layer_mix.
                let stacked = residuals
                    .iter()
                    .map(|r| {
                        let mut shape = vec![1];
                        shape.extend_from_slice(r.shape());
                        r.reshape(&shape)
                    })
                    .collect::<Result<Vec<_>>>()?;
                ops::layer_mix(
                    &ops::concat(&stacked.iter().collect::<Vec<_>>(), 0)?,
                    logits,
                )?
            }
            None => residuals
                .into_iter()
                .next_back()
                .ok_or_else(|| Error::InvalidArgument {
                    op: "Backbone::head",
                    detail: "no block output (num_hidden_layers is 0)".into(),
                })?,
        };
        let h = ops::rms_norm(&h, &self.norm_f, self.config.layer_norm_epsilon as f32)?;
        ops::linear(&h, self.lm_head.as_ref().unwrap_or(&self.embeddings), None)
    }

    fn check_state(&self, op: &'static str, state: &State, batch: usize) -> Result<()> {
        let want = self.config.applications();
        if state.layers.len() != want || state.batch() != batch {
            return shape_err(
                op,
                format!(
                    "state has {} layers for batch {}, but this model has {want} block applications and ids have batch {batch}",
                    state.layers.len(),
                    state.batch()
                ),
            );
        }
        Ok(())
    }
}

/// ids must be U32 of the given rank with no empty dimension.
fn check_ids(op: &'static str, ids: &Tensor, rank: usize) -> Result<()> {
    ids.expect_dtype(op, "ids", DType::U32)?;
    if ids.rank() != rank || ids.elem_count() == 0 {
        let want = if rank == 2 { "[B, L]" } else { "[B]" };
        return shape_err(
            op,
            format!(
                "ids must be {want} with no empty dimension, got {:?}",
                ids.shape()
            ),
        );
    }
    Ok(())
}
