//! The wgpu backend's side of the contract: each method unwraps its device buffers, calls the
//! launcher of its family (`wgpu/<family>.rs`, beside `shaders/<family>.wgsl`) and wraps the
//! result as storage. Implemented on `Arc<WgpuContext>` because buffers hold their context.

use std::sync::Arc;

use super::{
    GpuBuffer, WgpuContext, adamw, binary, conv1d, cross_entropy, embedding, gru, layer_mix,
    matmul, matmul_f16, reduce, rmsnorm, rollout, scan, shape, unary,
};
use crate::backend::contract::Backend;
use crate::backend::memory::MemoryStats;
use crate::backend::params::{
    AdamWFactors, AdamWStep, BinaryOp, ColumnBlock, ConvDims, CrossEntropyDims, EmbeddingDims,
    MatmulDims, MatmulPrecision, SampleDraw, ScanDims, ScanForward, ScanGrads, ScanInputs, UnaryOp,
};
use crate::backend::storage::Storage;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The device buffer of wgpu storage; `op` and `arg` name the input in the error otherwise.
pub fn buffer<'a>(s: &'a Storage, op: &'static str, arg: &'static str) -> Result<&'a GpuBuffer> {
    match s {
        Storage::Wgpu(b) => Ok(b),
        _ => Err(Error::InvalidArgument {
            op,
            detail: format!("{arg} is not on a wgpu device"),
        }),
    }
}

fn wrap(b: GpuBuffer) -> Storage {
    Storage::Wgpu(b)
}

impl Backend for Arc<WgpuContext> {
    fn name(&self) -> String {
        format!("wgpu:{}", self.describe())
    }

    // ---- memory ----------------------------------------------------------------------------------

    fn store_f32(&self, data: Vec<f32>) -> Result<Storage> {
        Ok(wrap(self.upload(bytemuck::cast_slice(&data))?))
    }
    fn store_u32(&self, data: Vec<u32>) -> Result<Storage> {
        Ok(wrap(self.upload(bytemuck::cast_slice(&data))?))
    }
    fn zeros(&self, n: usize) -> Result<Storage> {
        Ok(wrap(WgpuContext::zeros(self, n * 4)?))
    }
    fn to_vec_f32(&self, x: &Storage) -> Result<Vec<f32>> {
        let b = buffer(x, "to_vec_f32", "self")?;
        Ok(bytemuck::cast_slice(&self.read(b)?).to_vec())
    }
    fn to_vec_u32(&self, x: &Storage) -> Result<Vec<u32>> {
        let b = buffer(x, "to_vec_u32", "self")?;
        Ok(bytemuck::cast_slice(&self.read(b)?).to_vec())
    }
    fn duplicate(&self, x: &Storage) -> Result<Storage> {
        Ok(wrap(WgpuContext::duplicate(
            self,
            buffer(x, "duplicate", "x")?,
        )?))
    }
    fn memory_stats(&self) -> MemoryStats {
        WgpuContext::memory_stats(self)
    }
    fn reset_peak(&self) {
        WgpuContext::reset_peak(self)
    }

    // ---- binary, unary ---------------------------------------------------------------------------

    fn binary(
        &self,
        op: BinaryOp,
        a: &Storage,
        b: &Storage,
        n: usize,
        nb: usize,
    ) -> Result<Storage> {
        let (a, b) = (buffer(a, op.name(), "a")?, buffer(b, op.name(), "b")?);
        Ok(wrap(binary::binary(self, op.name(), a, b, n, nb)?))
    }
    fn unary(&self, op: UnaryOp, x: &Storage, n: usize) -> Result<Storage> {
        let (entry, c) = match op {
            UnaryOp::Silu => ("silu", 0.0),
            UnaryOp::Softplus => ("softplus", 0.0),
            // `exp` is a WGSL builtin, so the entry point cannot take the op's name.
            UnaryOp::Exp => ("exp_forward", 0.0),
            UnaryOp::Scale(c) => ("scale", c),
        };
        Ok(wrap(unary::unary(
            self,
            entry,
            buffer(x, op.name(), "x")?,
            n,
            c,
        )?))
    }
    fn unary_backward(&self, op: UnaryOp, x: &Storage, g: &Storage, n: usize) -> Result<Storage> {
        const OP: &str = "unary_backward";
        let entry = match op {
            UnaryOp::Silu => "silu_backward",
            UnaryOp::Softplus => "softplus_backward",
            UnaryOp::Exp | UnaryOp::Scale(_) => {
                return Err(Error::InvalidArgument {
                    op: OP,
                    detail: format!(
                        "{} has no backward kernel (it is built from other ops)",
                        op.name()
                    ),
                });
            }
        };
        Ok(wrap(unary::unary_backward(
            self,
            entry,
            buffer(x, OP, "x")?,
            buffer(g, OP, "g")?,
            n,
        )?))
    }

    // ---- reduce ----------------------------------------------------------------------------------

    fn sum(&self, x: &Storage, n: usize, square: bool) -> Result<Storage> {
        Ok(wrap(reduce::sum(self, buffer(x, "sum", "x")?, n, square)?))
    }
    fn sum_columns(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        Ok(wrap(reduce::sum_columns(
            self,
            buffer(x, "sum_columns", "x")?,
            rows,
            cols,
        )?))
    }
    fn expand(&self, x: &Storage, nx: usize, n: usize) -> Result<Storage> {
        Ok(wrap(reduce::expand(
            self,
            buffer(x, "expand", "x")?,
            nx,
            n,
        )?))
    }

    // ---- matmul ----------------------------------------------------------------------------------

    fn matmul(
        &self,
        a: &Storage,
        b: &Storage,
        dims: MatmulDims,
        precision: MatmulPrecision,
    ) -> Result<Storage> {
        let kernel = match precision {
            MatmulPrecision::F32 => matmul::matmul,
            MatmulPrecision::F16Operands => matmul_f16::matmul_f16,
        };
        let MatmulDims {
            m,
            k,
            n,
            transpose_a,
            transpose_b,
        } = dims;
        let (a, b) = (buffer(a, "matmul", "a")?, buffer(b, "matmul", "b")?);
        Ok(wrap(kernel(self, a, b, m, k, n, transpose_a, transpose_b)?))
    }

    // ---- embedding -------------------------------------------------------------------------------

    fn embedding(
        &self,
        ids: &Storage,
        _host_ids: &[u32],
        table: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let (ids, table) = (
            buffer(ids, "embedding", "ids")?,
            buffer(table, "embedding", "table")?,
        );
        Ok(wrap(embedding::embedding(
            self, ids, table, dims.n, dims.v, dims.d,
        )?))
    }
    fn embedding_backward(
        &self,
        host_ids: &[u32],
        g: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let g = buffer(g, "embedding_backward", "g")?;
        Ok(wrap(embedding::embedding_backward(
            self, host_ids, g, dims.v, dims.d,
        )?))
    }

    // ---- shape -----------------------------------------------------------------------------------

    fn narrow(&self, x: &Storage, _dtype: DType, block: ColumnBlock) -> Result<Storage> {
        let ColumnBlock {
            outer,
            cols,
            col,
            width,
        } = block;
        Ok(wrap(shape::narrow(
            self,
            buffer(x, "narrow", "x")?,
            outer,
            cols,
            col,
            width,
        )?))
    }
    fn narrow_backward(&self, g: &Storage, block: ColumnBlock) -> Result<Storage> {
        let ColumnBlock {
            outer,
            cols,
            col,
            width,
        } = block;
        Ok(wrap(shape::narrow_backward(
            self,
            buffer(g, "narrow_backward", "g")?,
            outer,
            cols,
            col,
            width,
        )?))
    }
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, _dtype: DType) -> Result<Storage> {
        let parts = parts
            .iter()
            .map(|&(s, w)| Ok((buffer(s, "concat", "xs")?, w)))
            .collect::<Result<Vec<_>>>()?;
        Ok(wrap(shape::concat(self, &parts, outer)?))
    }

    // ---- rmsnorm ---------------------------------------------------------------------------------

    fn rms_norm(
        &self,
        x: &Storage,
        weight: &Storage,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<Storage> {
        const OP: &str = "rms_norm";
        let (x, w) = (buffer(x, OP, "x")?, buffer(weight, OP, "weight")?);
        Ok(wrap(rmsnorm::rms_norm(self, x, w, rows, d, eps)?))
    }
    fn rms_norm_backward(
        &self,
        x: &Storage,
        weight: &Storage,
        g: &Storage,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "rms_norm_backward";
        let (x, w, g) = (
            buffer(x, OP, "x")?,
            buffer(weight, OP, "weight")?,
            buffer(g, OP, "g")?,
        );
        let (dx, dw) = rmsnorm::rms_norm_backward(self, x, w, g, rows, d, eps)?;
        Ok((wrap(dx), wrap(dw)))
    }

    // ---- conv1d ----------------------------------------------------------------------------------

    fn causal_conv1d(
        &self,
        x: &Storage,
        weight: &Storage,
        bias: Option<&Storage>,
        dims: ConvDims,
    ) -> Result<Storage> {
        const OP: &str = "causal_conv1d";
        let bias = bias.map(|b| buffer(b, OP, "bias")).transpose()?;
        let (x, w) = (buffer(x, OP, "x")?, buffer(weight, OP, "weight")?);
        Ok(wrap(conv1d::causal_conv1d(self, x, w, bias, dims)?))
    }
    fn causal_conv1d_backward_x(
        &self,
        g: &Storage,
        weight: &Storage,
        dims: ConvDims,
    ) -> Result<Storage> {
        const OP: &str = "causal_conv1d_backward_x";
        let (g, w) = (buffer(g, OP, "g")?, buffer(weight, OP, "weight")?);
        Ok(wrap(conv1d::causal_conv1d_backward_x(self, g, w, dims)?))
    }
    fn causal_conv1d_backward_params(
        &self,
        x: &Storage,
        g: &Storage,
        dims: ConvDims,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "causal_conv1d_backward_params";
        let (x, g) = (buffer(x, OP, "x")?, buffer(g, OP, "g")?);
        let (dw, db) = conv1d::causal_conv1d_backward_params(self, x, g, dims)?;
        Ok((wrap(dw), wrap(db)))
    }

    // ---- scan ------------------------------------------------------------------------------------

    fn selective_scan(
        &self,
        dims: ScanDims,
        inputs: ScanInputs<&Storage>,
        save: bool,
    ) -> Result<ScanForward<Storage>> {
        let x = inputs.try_map(|s, arg| buffer(s, "selective_scan", arg))?;
        let out = scan::selective_scan(
            self, dims, x.u, x.delta, x.a, x.b, x.c, x.d, x.z, x.h0, save,
        )?;
        Ok(out.map(wrap))
    }
    fn selective_scan_backward(
        &self,
        dims: ScanDims,
        inputs: ScanInputs<&Storage>,
        saved: &Storage,
        gy: &Storage,
    ) -> Result<ScanGrads<Storage>> {
        const OP: &str = "selective_scan_backward";
        let x = inputs.try_map(|s, arg| buffer(s, OP, arg))?;
        let (saved, gy) = (buffer(saved, OP, "saved")?, buffer(gy, OP, "gy")?);
        let g = scan::selective_scan_backward(
            self, dims, x.u, x.delta, x.a, x.b, x.c, x.d, x.z, saved, gy,
        )?;
        Ok(g.map(wrap))
    }

    // ---- layer_mix -------------------------------------------------------------------------------

    fn layer_mix(
        &self,
        xs: &Storage,
        logits: &Storage,
        layers: usize,
        m: usize,
    ) -> Result<Storage> {
        const OP: &str = "layer_mix";
        let (xs, l) = (buffer(xs, OP, "xs")?, buffer(logits, OP, "logits")?);
        Ok(wrap(layer_mix::layer_mix(self, xs, l, layers, m)?))
    }
    fn layer_mix_backward(
        &self,
        xs: &Storage,
        logits: &Storage,
        g: &Storage,
        layers: usize,
        m: usize,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "layer_mix_backward";
        let (xs, l, g) = (
            buffer(xs, OP, "xs")?,
            buffer(logits, OP, "logits")?,
            buffer(g, OP, "g")?,
        );
        let (dxs, dl) = layer_mix::layer_mix_backward(self, xs, l, g, layers, m)?;
        Ok((wrap(dxs), wrap(dl)))
    }

    // ---- cross_entropy ---------------------------------------------------------------------------

    fn log_softmax(&self, x: &Storage, rows: usize, v: usize) -> Result<Storage> {
        Ok(wrap(cross_entropy::log_softmax(
            self,
            buffer(x, "log_softmax", "x")?,
            rows,
            v,
        )?))
    }
    fn log_softmax_backward(
        &self,
        x: &Storage,
        g: &Storage,
        rows: usize,
        v: usize,
    ) -> Result<Storage> {
        const OP: &str = "log_softmax_backward";
        let (x, g) = (buffer(x, OP, "x")?, buffer(g, OP, "g")?);
        Ok(wrap(cross_entropy::log_softmax_backward(
            self, x, g, rows, v,
        )?))
    }
    fn cross_entropy(
        &self,
        logits: &Storage,
        targets: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        const OP: &str = "cross_entropy";
        let (l, t) = (
            buffer(logits, OP, "logits")?,
            buffer(targets, OP, "targets")?,
        );
        let CrossEntropyDims {
            rows,
            v,
            ignore_index,
            count,
        } = dims;
        Ok(wrap(cross_entropy::cross_entropy(
            self,
            l,
            t,
            ignore_index,
            rows,
            v,
            count,
        )?))
    }
    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        targets: &Storage,
        g: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        const OP: &str = "cross_entropy_backward";
        let (l, t, g) = (
            buffer(logits, OP, "logits")?,
            buffer(targets, OP, "targets")?,
            buffer(g, OP, "g")?,
        );
        let CrossEntropyDims {
            rows,
            v,
            ignore_index,
            count,
        } = dims;
        Ok(wrap(cross_entropy::cross_entropy_backward(
            self,
            l,
            t,
            g,
            ignore_index,
            rows,
            v,
            count,
        )?))
    }

    // ---- gru -------------------------------------------------------------------------------------

    fn gru_gates(
        &self,
        gi: &Storage,
        gh: &Storage,
        h: &Storage,
        batch: usize,
        hidden: usize,
    ) -> Result<Storage> {
        const OP: &str = "gru_gates";
        let (gi, gh, h) = (
            buffer(gi, OP, "gi")?,
            buffer(gh, OP, "gh")?,
            buffer(h, OP, "h")?,
        );
        Ok(wrap(gru::gru_gates(self, gi, gh, h, batch, hidden)?))
    }
    fn gru_gates_backward(
        &self,
        gi: &Storage,
        gh: &Storage,
        h: &Storage,
        g: &Storage,
        batch: usize,
        hidden: usize,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "gru_gates_backward";
        let (gi, gh) = (buffer(gi, OP, "gi")?, buffer(gh, OP, "gh")?);
        let (h, g) = (buffer(h, OP, "h")?, buffer(g, OP, "g")?);
        let (dgi, dgh, dh) = gru::gru_gates_backward(self, gi, gh, h, g, batch, hidden)?;
        Ok((wrap(dgi), wrap(dgh), wrap(dh)))
    }

    // ---- rollout ---------------------------------------------------------------------------------

    fn top_k(
        &self,
        logits: &Storage,
        rows: usize,
        v: usize,
        k: usize,
        log_probs: bool,
    ) -> Result<(Storage, Storage)> {
        let op = if log_probs {
            "topk_log_softmax"
        } else {
            "top_k"
        };
        let x = buffer(logits, op, "logits")?;
        let (values, indices) = rollout::top_k(self, x, rows, v, k, log_probs)?;
        Ok((wrap(values), wrap(indices)))
    }
    fn sample_logits(
        &self,
        logits: &Storage,
        rows: usize,
        n: usize,
        draw: SampleDraw,
    ) -> Result<Storage> {
        let x = buffer(logits, "sample_logits", "logits")?;
        Ok(wrap(rollout::sample_logits(self, x, rows, n, draw)?))
    }
    fn certainty(&self, logits: &Storage, rows: usize, v: usize) -> Result<Storage> {
        let x = buffer(logits, "certainty", "logits")?;
        Ok(wrap(rollout::certainty(self, x, rows, v)?))
    }

    // ---- adamw -----------------------------------------------------------------------------------

    fn adamw_step(
        &self,
        inputs: [&Storage; 4],
        n: usize,
        step: &AdamWStep,
        factors: &AdamWFactors,
    ) -> Result<[Storage; 3]> {
        const OP: &str = "adamw_step";
        let [p, g, m, v] = inputs;
        let inputs = [
            buffer(p, OP, "param")?,
            buffer(g, OP, "grad")?,
            buffer(m, OP, "m")?,
            buffer(v, OP, "v")?,
        ];
        Ok(adamw::adamw_step(self, inputs, n, step, factors)?.map(wrap))
    }
}
