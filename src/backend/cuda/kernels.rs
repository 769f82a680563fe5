//! The cuda backend's side of the contract: each method unwraps its device buffers, calls its
//! family's launcher (`cuda/<family>.rs`) and wraps the result as storage. Nothing here computes.

use std::sync::Arc;

use super::buffer::{CudaBuffer, Words};
use super::context::CudaDevice;
use super::{
    adamw, conv1d, cross_entropy, elementwise, embedding, gru, layer_mix, matmul, reduce, rmsnorm,
    rollout, scan, shape,
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

/// The buffer of cuda storage; `op` and `arg` name the input in the error otherwise.
pub fn buffer<'a>(s: &'a Storage, op: &'static str, arg: &'static str) -> Result<&'a CudaBuffer> {
    match s {
        Storage::Cuda(b) => Ok(b),
        _ => Err(Error::InvalidArgument {
            op,
            detail: format!("{arg} is not on a cuda device"),
        }),
    }
}

fn wrap(b: CudaBuffer) -> Storage {
    Storage::Cuda(b)
}

impl Backend for Arc<CudaDevice> {
    fn name(&self) -> String {
        CudaDevice::name(self)
    }

    // ---- memory ----------------------------------------------------------------------------------

    fn store_f32(&self, data: Vec<f32>) -> Result<Storage> {
        Ok(wrap(self.upload_f32(&data)?))
    }
    fn store_u32(&self, data: Vec<u32>) -> Result<Storage> {
        Ok(wrap(self.upload_u32(&data)?))
    }
    fn zeros(&self, n: usize) -> Result<Storage> {
        Ok(wrap(self.zeros_f32(n)?))
    }
    fn to_vec_f32(&self, x: &Storage) -> Result<Vec<f32>> {
        let b = buffer(x, "to_vec_f32", "self")?;
        self.download(b.f32("to_vec_f32", "self")?, b.len())
    }
    fn to_vec_u32(&self, x: &Storage) -> Result<Vec<u32>> {
        let b = buffer(x, "to_vec_u32", "self")?;
        self.download(b.u32("to_vec_u32", "self")?, b.len())
    }
    fn duplicate(&self, x: &Storage) -> Result<Storage> {
        const OP: &str = "duplicate";
        let b = buffer(x, OP, "x")?;
        let n = b.len();
        let copy = |r: std::result::Result<(), cudarc::driver::DriverError>| {
            r.map_err(|e| super::context::driver_err("cuMemcpyDtoD", e))
        };
        let mut out = match b.words() {
            Words::F32(_) => self.alloc_f32(n)?,
            Words::U32(_) => self.alloc_u32(n)?,
            Words::Bf16(_) => self.alloc_bf16(n)?,
        };
        if n > 0 {
            let stream = self.stream();
            match b.words() {
                Words::F32(s) => copy(stream.memcpy_dtod(&s.slice(..n), out.f32_mut(OP, "out")?))?,
                Words::U32(s) => copy(stream.memcpy_dtod(&s.slice(..n), out.u32_mut(OP, "out")?))?,
                Words::Bf16(s) => {
                    copy(stream.memcpy_dtod(&s.slice(..n), out.bf16_mut(OP, "out")?))?
                }
            }
        }
        Ok(wrap(out))
    }
    fn memory_stats(&self) -> MemoryStats {
        CudaDevice::memory_stats(self)
    }
    fn reset_peak(&self) {
        CudaDevice::reset_peak(self)
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
        Ok(wrap(elementwise::binary(self, op, a, b, n, nb)?))
    }
    fn add_assign(&self, acc: &mut Storage, x: &Storage, n: usize) -> Result<()> {
        let x = buffer(x, "add_assign", "x")?;
        match acc {
            Storage::Cuda(acc) => elementwise::add_assign(self, acc, x, n),
            _ => Err(Error::InvalidArgument {
                op: "add_assign",
                detail: "acc is not on a cuda device".to_string(),
            }),
        }
    }
    fn unary(&self, op: UnaryOp, x: &Storage, n: usize) -> Result<Storage> {
        let x = buffer(x, op.name(), "x")?;
        Ok(wrap(elementwise::unary(self, op, x, n)?))
    }
    fn unary_backward(&self, op: UnaryOp, x: &Storage, g: &Storage, n: usize) -> Result<Storage> {
        const OP: &str = "unary_backward";
        let (x, g) = (buffer(x, OP, "x")?, buffer(g, OP, "g")?);
        Ok(wrap(elementwise::unary_backward(self, op, x, g, n)?))
    }

    // ---- reduce ----------------------------------------------------------------------------------

    fn sum(&self, x: &Storage, n: usize, square: bool) -> Result<Storage> {
        Ok(wrap(reduce::sum(self, buffer(x, "sum", "x")?, n, square)?))
    }
    fn sum_columns(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        let x = buffer(x, "sum_columns", "x")?;
        Ok(wrap(reduce::sum_columns(self, x, rows, cols)?))
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
        let (a, b) = (buffer(a, "matmul", "a")?, buffer(b, "matmul", "b")?);
        Ok(wrap(matmul::matmul(self, a, b, dims, precision)?))
    }
    fn to_bf16(&self, x: &Storage, n: usize) -> Result<Storage> {
        Ok(wrap(matmul::to_bf16(self, buffer(x, "to_bf16", "x")?, n)?))
    }
    fn matmul_bf16_weights(
        &self,
        a: &Storage,
        w: &Storage,
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Storage> {
        const OP: &str = "matmul_bf16_weights";
        let (a, w) = (buffer(a, OP, "a")?, buffer(w, OP, "w")?);
        Ok(wrap(matmul::matmul_bf16_weights(self, a, w, m, k, n)?))
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
        Ok(wrap(embedding::embedding(self, ids, table, dims)?))
    }
    fn embedding_backward(
        &self,
        host_ids: &[u32],
        g: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let g = buffer(g, "embedding_backward", "g")?;
        Ok(wrap(embedding::embedding_backward(
            self, host_ids, g, dims,
        )?))
    }

    // ---- shape -----------------------------------------------------------------------------------

    fn narrow(&self, x: &Storage, dtype: DType, block: ColumnBlock) -> Result<Storage> {
        Ok(wrap(shape::narrow(
            self,
            buffer(x, "narrow", "x")?,
            dtype,
            block,
        )?))
    }
    fn narrow_backward(&self, g: &Storage, block: ColumnBlock) -> Result<Storage> {
        let g = buffer(g, "narrow_backward", "g")?;
        Ok(wrap(shape::narrow_backward(self, g, block)?))
    }
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, dtype: DType) -> Result<Storage> {
        let parts = parts
            .iter()
            .map(|&(s, w)| Ok((buffer(s, "concat", "xs")?, w)))
            .collect::<Result<Vec<_>>>()?;
        Ok(wrap(shape::concat(self, &parts, outer, dtype)?))
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
        let (x, w) = (
            buffer(x, "rms_norm", "x")?,
            buffer(weight, "rms_norm", "weight")?,
        );
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
        let (x, w) = (buffer(x, OP, "x")?, buffer(weight, OP, "weight")?);
        let bias = bias.map(|b| buffer(b, OP, "bias")).transpose()?;
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
        Ok(scan::selective_scan(self, dims, x, save)?.map(wrap))
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
        Ok(scan::selective_scan_backward(self, dims, x, saved, gy)?.map(wrap))
    }

    // ---- layer_mix -------------------------------------------------------------------------------

    fn layer_mix(
        &self,
        xs: &Storage,
        logits: &Storage,
        layers: usize,
        m: usize,
    ) -> Result<Storage> {
        let (xs, lg) = (
            buffer(xs, "layer_mix", "xs")?,
            buffer(logits, "layer_mix", "logits")?,
        );
        Ok(wrap(layer_mix::layer_mix(self, xs, lg, layers, m)?))
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
        let (xs, lg, g) = (
            buffer(xs, OP, "xs")?,
            buffer(logits, OP, "logits")?,
            buffer(g, OP, "g")?,
        );
        let (dxs, dl) = layer_mix::layer_mix_backward(self, xs, lg, g, layers, m)?;
        Ok((wrap(dxs), wrap(dl)))
    }

    // ---- cross_entropy ---------------------------------------------------------------------------

    fn log_softmax(&self, x: &Storage, rows: usize, v: usize) -> Result<Storage> {
        let x = buffer(x, "log_softmax", "x")?;
        Ok(wrap(cross_entropy::log_softmax(self, x, rows, v)?))
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
        let (x, t) = (
            buffer(logits, OP, "logits")?,
            buffer(targets, OP, "targets")?,
        );
        Ok(wrap(cross_entropy::cross_entropy(self, x, t, dims)?))
    }
    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        targets: &Storage,
        g: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        const OP: &str = "cross_entropy_backward";
        let (x, t, g) = (
            buffer(logits, OP, "logits")?,
            buffer(targets, OP, "targets")?,
            buffer(g, OP, "g")?,
        );
        Ok(wrap(cross_entropy::cross_entropy_backward(
            self, x, t, g, dims,
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
        let inputs = [
            buffer(gi, OP, "gi")?,
            buffer(gh, OP, "gh")?,
            buffer(h, OP, "h")?,
            buffer(g, OP, "g")?,
        ];
        let (a, b, c) = gru::gru_gates_backward(self, inputs, batch, hidden)?;
        Ok((wrap(a), wrap(b), wrap(c)))
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
        let x = buffer(logits, "top_k", "logits")?;
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
        let [p2, m2, v2] = adamw::adamw_step(self, inputs, n, step, factors)?;
        Ok([wrap(p2), wrap(m2), wrap(v2)])
    }
}
