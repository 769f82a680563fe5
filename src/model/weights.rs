//! Tensor names and the checkpoint <-> model mapping. Backbone names are those of HF
//! `MambaForCausalLM` (`state-spaces/mamba-*-hf`), so real pretrained checkpoints load as they
//! are; the CRSM additions live under `crsm.` (docs/ARCHITECTURE.md, The backbone).
//!
//! Loading is strict: a tensor the config does not call for, a missing one, or a shape that
//! disagrees with config.json is an `Error::Checkpoint` naming the tensor (and both shapes).

use crate::backend::Device;
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap};
use crate::model::adapter::DepthAdapter;
use crate::model::config::CrsmConfig;
use crate::nn::MambaBlock;
use crate::tensor::Tensor;

pub const EMBEDDINGS: &str = "backbone.embeddings.weight";
/// The name in checkpoints converted by early transformers versions; accepted on load.
pub const EMBEDDINGS_OLD: &str = "backbone.embedding.weight";
pub const NORM_F: &str = "backbone.norm_f.weight";
/// Absent when the head is tied to the embeddings.
pub const LM_HEAD: &str = "lm_head.weight";
/// [layers * depth]: the fusion logits, one per block application.
pub const FUSION: &str = "crsm.fusion.logits";

pub fn layer_name(layer: usize, suffix: &str) -> String {
    format!("backbone.layers.{layer}.{suffix}")
}

pub fn adapter_name(pass: usize, suffix: &str) -> String {
    format!("crsm.adapters.{pass}.{suffix}")
}

/// A block's tensors under `backbone.layers.{i}.`, in `MambaBlock::parameters` order. The conv
/// weight is ours, [E, K]; checkpoints hold HF's [E, 1, K] (see `checkpoint_shape`).
pub fn block_tensors(block: &MambaBlock) -> Vec<(&'static str, &Tensor)> {
    let mut v = vec![
        ("norm.weight", &block.norm),
        ("mixer.in_proj.weight", &block.in_proj),
    ];
    if let Some(b) = &block.in_proj_bias {
        v.push(("mixer.in_proj.bias", b));
    }
    v.push(("mixer.conv1d.weight", &block.conv_weight));
    if let Some(b) = &block.conv_bias {
        v.push(("mixer.conv1d.bias", b));
    }
    v.extend([
        ("mixer.x_proj.weight", &block.x_proj),
        ("mixer.dt_proj.weight", &block.dt_proj),
        ("mixer.dt_proj.bias", &block.dt_bias),
        ("mixer.A_log", &block.a_log),
        ("mixer.D", &block.d),
        ("mixer.out_proj.weight", &block.out_proj),
    ]);
    if let Some(b) = &block.out_proj_bias {
        v.push(("mixer.out_proj.bias", b));
    }
    v
}

/// The shape a tensor has in a checkpoint, given its shape here: HF keeps the depthwise conv
/// weight as nn.Conv1d's [E, 1, K]; everything else is stored as used.
pub fn checkpoint_shape(name: &str, shape: &[usize]) -> Vec<usize> {
    match shape {
        &[e, k] if name.ends_with("mixer.conv1d.weight") => vec![e, 1, k],
        _ => shape.to_vec(),
    }
}

// ---- loading -----------------------------------------------------------------------------------

/// Takes tensors out of a checkpoint's map by name, checking shapes; what is left at the end is
/// an error.
pub(crate) struct Loader<'a> {
    map: TensorMap,
    file: String,
    device: &'a Device,
}

impl<'a> Loader<'a> {
    pub fn new(mut map: TensorMap, file: String, device: &'a Device) -> Self {
        // Early converted checkpoints name the embedding `backbone.embedding.weight`.
        if !map.contains_key(EMBEDDINGS)
            && let Some(t) = map.remove(EMBEDDINGS_OLD)
        {
            map.insert(EMBEDDINGS.to_string(), t);
        }
        Loader { map, file, device }
    }

    fn err(&self, tensor: &str, detail: String) -> Error {
        Error::Checkpoint {
            file: self.file.clone(),
            tensor: tensor.to_string(),
            detail,
        }
    }

    /// The host tensor `name`, which must have shape `want` (checkpoint layout).
    fn take_host(&mut self, name: &str, want: &[usize]) -> Result<HostTensor> {
        let Some(t) = self.map.remove(name) else {
            return Err(self.err(
                name,
                format!("missing from the checkpoint (config.json implies shape {want:?})"),
            ));
        };
        if t.shape != want {
            return Err(self.err(
                name,
                format!(
                    "shape {:?} in the checkpoint, but config.json implies {want:?}",
                    t.shape
                ),
            ));
        }
        Ok(t)
    }

    /// The tensor `name` as a variable of shape `shape` on the device (checkpoint layout derived
    /// by `checkpoint_shape`).
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let host = self.take_host(name, &checkpoint_shape(name, shape))?;
        Ok(Tensor::from_f32(host.data, shape, self.device)?.as_variable())
    }

    pub fn take_if(
        &mut self,
        present: bool,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<Tensor>> {
        present.then(|| self.take(name, shape)).transpose()
    }

    /// A stored `lm_head.weight` in a tied model: HF's `tie_weights` replaces it with the
    /// embeddings, so it is accepted only when it already equals them; a different one would be
    /// silently discarded, which is more likely a config mistake than intent.
    pub fn accept_tied_head(&mut self, embeddings: &Tensor) -> Result<()> {
        let Some(head) = self.map.remove(LM_HEAD) else {
            return Ok(());
        };
        if head.shape != embeddings.shape() || head.data != embeddings.to_vec_f32()? {
            return Err(self.err(
                LM_HEAD,
                format!(
                    "present with shape {:?} and differing from {EMBEDDINGS} {:?}, but config.json ties them (tie_word_embeddings: true); \
                     set tie_word_embeddings to false to use it",
                    head.shape,
                    embeddings.shape()
                ),
            ));
        }
        Ok(())
    }

    /// Errors when the checkpoint holds tensors the config did not call for.
    pub fn finish(self) -> Result<()> {
        let mut rest = self.map.iter();
        let Some((name, t)) = rest.next() else {
            return Ok(());
        };
        let others = self.map.len() - 1;
        Err(self.err(
            name,
            format!(
                "unexpected tensor of shape {:?}: config.json does not call for it ({others} other unexpected tensors); \
                 check use_bias, use_conv_bias, tie_word_embeddings, num_hidden_layers and the crsm_* keys",
                t.shape
            ),
        ))
    }
}

/// One block's tensors from the loader.
pub(crate) fn load_block(l: &mut Loader, layer: usize, config: &CrsmConfig) -> Result<MambaBlock> {
    let dims = config.block_dims();
    let (d, e, n, r, k) = (
        dims.d_model,
        dims.d_inner,
        dims.d_state,
        dims.dt_rank,
        dims.conv_kernel,
    );
    let name = |suffix: &str| layer_name(layer, suffix);
    Ok(MambaBlock {
        dims,
        norm_eps: config.layer_norm_epsilon as f32,
        norm: l.take(&name("norm.weight"), &[d])?,
        in_proj: l.take(&name("mixer.in_proj.weight"), &[2 * e, d])?,
        in_proj_bias: l.take_if(config.use_bias, &name("mixer.in_proj.bias"), &[2 * e])?,
        conv_weight: l.take(&name("mixer.conv1d.weight"), &[e, k])?,
        conv_bias: l.take_if(config.use_conv_bias, &name("mixer.conv1d.bias"), &[e])?,
        x_proj: l.take(&name("mixer.x_proj.weight"), &[r + 2 * n, e])?,
        dt_proj: l.take(&name("mixer.dt_proj.weight"), &[e, r])?,
        dt_bias: l.take(&name("mixer.dt_proj.bias"), &[e])?,
        a_log: l.take(&name("mixer.A_log"), &[e, n])?,
        d: l.take(&name("mixer.D"), &[e])?,
        out_proj: l.take(&name("mixer.out_proj.weight"), &[d, e])?,
        out_proj_bias: l.take_if(config.use_bias, &name("mixer.out_proj.bias"), &[d])?,
    })
}

pub(crate) fn load_adapter(l: &mut Loader, pass: usize, d: usize) -> Result<DepthAdapter> {
    Ok(DepthAdapter {
        scale: l.take(&adapter_name(pass, "scale"), &[d])?,
        bias: l.take(&adapter_name(pass, "bias"), &[d])?,
    })
}

// ---- saving ------------------------------------------------------------------------------------

/// Named tensors -> a checkpoint map in checkpoint layout (host copies).
pub(crate) fn to_tensor_map(named: &[(String, &Tensor)]) -> Result<TensorMap> {
    named
        .iter()
        .map(|(name, t)| {
            Ok((
                name.clone(),
                HostTensor {
                    shape: checkpoint_shape(name, t.shape()),
                    data: t.to_vec_f32()?,
                },
            ))
        })
        .collect()
}
