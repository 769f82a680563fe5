//! The cpu backend's side of the contract: each method unwraps its host slices, calls the
//! readable reference kernel of its family (`cpu/<family>.rs`) and wraps the result as storage.
//! Nothing here computes; it only adapts.

use super::storage::{self, CpuStorage};
use super::{
    adamw, binary, conv1d, cross_entropy, embedding, gru, layer_mix, mamba_step, matmul,
    matmul_bf16, matmul_f16, reduce, rmsnorm, rollout, scan, shape, unary,
};
use crate::backend::contract::Backend;
use crate::backend::memory::MemoryStats;
use crate::backend::params::{
    AdamWFactors, AdamWStep, BinaryOp, ColumnBlock, ConvDims, CrossEntropyDims, EmbeddingDims,
    MambaStepDims, MambaStepWeights, MatmulDims, MatmulPrecision, SampleDraw, ScanDims,
    ScanForward, ScanGrads, ScanInputs, UnaryOp,
};
use crate::backend::storage::Storage;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The cpu backend (stateless: its memory counters are process-wide).
pub struct Cpu;

/// The f32 values of cpu storage; `op` and `arg` name the input in the error otherwise.
pub fn f32s<'a>(s: &'a Storage, op: &'static str, arg: &'static str) -> Result<&'a [f32]> {
    match s {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(v),
        _ => Err(not_here(op, arg, "f32 values on the cpu")),
    }
}

/// The u32 values of cpu storage.
pub fn u32s<'a>(s: &'a Storage, op: &'static str, arg: &'static str) -> Result<&'a [u32]> {
    match s {
        Storage::Cpu(CpuStorage::U32(v)) => Ok(v),
        _ => Err(not_here(op, arg, "u32 values on the cpu")),
    }
}

/// The bf16 bits of cpu storage.
pub fn bf16s<'a>(s: &'a Storage, op: &'static str, arg: &'static str) -> Result<&'a [u16]> {
    match s {
        Storage::Cpu(CpuStorage::BF16(v)) => Ok(v),
        _ => Err(not_here(op, arg, "bf16 values on the cpu")),
    }
}

/// A matmul weight of the fused step: f32 or bf16 storage.
fn step_weight<'a>(s: &'a Storage, arg: &'static str) -> Result<mamba_step::Weight<'a>> {
    match s {
        Storage::Cpu(CpuStorage::BF16(v)) => Ok(mamba_step::Weight::Bf16(v)),
        _ => Ok(mamba_step::Weight::F32(f32s(s, "mamba_step", arg)?)),
    }
}

fn not_here(op: &'static str, arg: &'static str, what: &str) -> Error {
    Error::InvalidArgument {
        op,
        detail: format!("{arg} is not {what}"),
    }
}

fn f32_storage(v: Vec<f32>) -> Storage {
    Storage::Cpu(CpuStorage::f32(v))
}

impl Backend for Cpu {
    fn name(&self) -> String {
        "cpu".to_string()
    }

    // ---- memory ----------------------------------------------------------------------------------

    fn store_f32(&self, data: Vec<f32>) -> Result<Storage> {
        Ok(f32_storage(data))
    }
    fn store_u32(&self, data: Vec<u32>) -> Result<Storage> {
        Ok(Storage::Cpu(CpuStorage::u32(data)))
    }
    fn to_vec_f32(&self, x: &Storage) -> Result<Vec<f32>> {
        Ok(f32s(x, "to_vec_f32", "self")?.to_vec())
    }
    fn to_vec_u32(&self, x: &Storage) -> Result<Vec<u32>> {
        Ok(u32s(x, "to_vec_u32", "self")?.to_vec())
    }
    fn duplicate(&self, x: &Storage) -> Result<Storage> {
        match x {
            Storage::Cpu(CpuStorage::F32(v)) => Ok(f32_storage(v.clone())),
            Storage::Cpu(CpuStorage::U32(v)) => self.store_u32(v.clone()),
            Storage::Cpu(CpuStorage::BF16(v)) => Ok(Storage::Cpu(CpuStorage::bf16(v.clone()))),
            _ => Err(not_here("duplicate", "x", "on the cpu")),
        }
    }
    fn memory_stats(&self) -> MemoryStats {
        storage::memory_stats()
    }
    fn reset_peak(&self) {
        storage::reset_peak()
    }

    // ---- binary, unary ---------------------------------------------------------------------------

    fn binary(
        &self,
        op: BinaryOp,
        a: &Storage,
        b: &Storage,
        _n: usize,
        _nb: usize,
    ) -> Result<Storage> {
        let (a, b) = (f32s(a, op.name(), "a")?, f32s(b, op.name(), "b")?);
        Ok(f32_storage(match op {
            BinaryOp::Add => binary::add(a, b),
            BinaryOp::Mul => binary::mul(a, b),
        }))
    }
    fn add_assign(&self, acc: &mut Storage, x: &Storage, _n: usize) -> Result<()> {
        let x = f32s(x, "add_assign", "x")?;
        match acc {
            Storage::Cpu(CpuStorage::F32(acc)) => {
                binary::add_assign(acc, x);
                Ok(())
            }
            _ => Err(not_here("add_assign", "acc", "f32 values on the cpu")),
        }
    }
    fn unary(&self, op: UnaryOp, x: &Storage, _n: usize) -> Result<Storage> {
        let x = f32s(x, op.name(), "x")?;
        Ok(f32_storage(match op {
            UnaryOp::Silu => unary::silu(x),
            UnaryOp::Softplus => unary::softplus(x),
            UnaryOp::Exp => unary::exp(x),
            UnaryOp::Scale(c) => unary::scale(x, c),
        }))
    }
    fn unary_backward(&self, op: UnaryOp, x: &Storage, g: &Storage, _n: usize) -> Result<Storage> {
        const OP: &str = "unary_backward";
        let (x, g) = (f32s(x, OP, "x")?, f32s(g, OP, "g")?);
        Ok(f32_storage(match op {
            UnaryOp::Silu => unary::silu_backward(x, g),
            UnaryOp::Softplus => unary::softplus_backward(x, g),
            UnaryOp::Exp | UnaryOp::Scale(_) => {
                return Err(Error::InvalidArgument {
                    op: OP,
                    detail: format!(
                        "{} has no backward kernel (it is built from other ops)",
                        op.name()
                    ),
                });
            }
        }))
    }

    // ---- reduce ----------------------------------------------------------------------------------

    fn sum(&self, x: &Storage, _n: usize, square: bool) -> Result<Storage> {
        Ok(f32_storage(vec![reduce::sum(f32s(x, "sum", "x")?, square)]))
    }
    fn sum_columns(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        Ok(f32_storage(reduce::sum_columns(
            f32s(x, "sum_columns", "x")?,
            rows,
            cols,
        )))
    }
    fn expand(&self, x: &Storage, _nx: usize, n: usize) -> Result<Storage> {
        Ok(f32_storage(reduce::expand(f32s(x, "expand", "x")?, n)))
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
        let c = kernel(
            f32s(a, "matmul", "a")?,
            f32s(b, "matmul", "b")?,
            m,
            k,
            n,
            transpose_a,
            transpose_b,
        )?;
        Ok(f32_storage(c))
    }

    fn to_bf16(&self, x: &Storage, _n: usize) -> Result<Storage> {
        let x = f32s(x, "to_bf16", "x")?;
        Ok(Storage::Cpu(CpuStorage::bf16(matmul_bf16::to_bf16(x))))
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
        let (a, w) = (f32s(a, OP, "a")?, bf16s(w, OP, "w")?);
        Ok(f32_storage(matmul_bf16::matmul_bf16_weights(
            a, w, m, k, n,
        )?))
    }

    // ---- embedding -------------------------------------------------------------------------------

    fn embedding(
        &self,
        _ids: &Storage,
        host_ids: &[u32],
        table: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let table = f32s(table, "embedding", "table")?;
        Ok(f32_storage(embedding::embedding(host_ids, table, dims.d)))
    }
    fn embedding_backward(
        &self,
        host_ids: &[u32],
        g: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let g = f32s(g, "embedding_backward", "g")?;
        Ok(f32_storage(embedding::embedding_backward(
            host_ids, g, dims.v, dims.d,
        )))
    }

    // ---- shape -----------------------------------------------------------------------------------

    fn narrow(&self, x: &Storage, dtype: DType, block: ColumnBlock) -> Result<Storage> {
        let ColumnBlock {
            outer,
            cols,
            col,
            width,
        } = block;
        match dtype {
            DType::F32 => Ok(f32_storage(shape::narrow(
                f32s(x, "narrow", "x")?,
                outer,
                cols,
                col,
                width,
            ))),
            DType::U32 => self.store_u32(shape::narrow(
                u32s(x, "narrow", "x")?,
                outer,
                cols,
                col,
                width,
            )),
            DType::BF16 => {
                let x = bf16s(x, "narrow", "x")?;
                Ok(Storage::Cpu(CpuStorage::bf16(shape::narrow(
                    x, outer, cols, col, width,
                ))))
            }
        }
    }
    fn narrow_backward(&self, g: &Storage, block: ColumnBlock) -> Result<Storage> {
        let ColumnBlock {
            outer,
            cols,
            col,
            width,
        } = block;
        let g = f32s(g, "narrow_backward", "g")?;
        Ok(f32_storage(shape::narrow_backward(
            g, outer, cols, col, width,
        )))
    }
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, dtype: DType) -> Result<Storage> {
        match dtype {
            DType::F32 => {
                let parts = parts
                    .iter()
                    .map(|&(s, w)| Ok((f32s(s, "concat", "xs")?, w)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(f32_storage(shape::concat(&parts, outer)))
            }
            DType::U32 => {
                let parts = parts
                    .iter()
                    .map(|&(s, w)| Ok((u32s(s, "concat", "xs")?, w)))
                    .collect::<Result<Vec<_>>>()?;
                self.store_u32(shape::concat(&parts, outer))
            }
            DType::BF16 => Err(not_here("concat", "xs", "f32 or u32 (bf16 is for weights)")),
        }
    }

    // ---- rmsnorm ---------------------------------------------------------------------------------

    fn rms_norm(
        &self,
        x: &Storage,
        weight: &Storage,
        _rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<Storage> {
        const OP: &str = "rms_norm";
        Ok(f32_storage(rmsnorm::rms_norm(
            f32s(x, OP, "x")?,
            f32s(weight, OP, "weight")?,
            d,
            eps,
        )))
    }
    fn rms_norm_backward(
        &self,
        x: &Storage,
        weight: &Storage,
        g: &Storage,
        _rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "rms_norm_backward";
        let (dx, dw) = rmsnorm::rms_norm_backward(
            f32s(x, OP, "x")?,
            f32s(weight, OP, "weight")?,
            f32s(g, OP, "g")?,
            d,
            eps,
        );
        Ok((f32_storage(dx), f32_storage(dw)))
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
        let bias = bias.map(|b| f32s(b, OP, "bias")).transpose()?;
        Ok(f32_storage(conv1d::causal_conv1d(
            f32s(x, OP, "x")?,
            f32s(weight, OP, "weight")?,
            bias,
            dims,
        )))
    }
    fn causal_conv1d_backward_x(
        &self,
        g: &Storage,
        weight: &Storage,
        dims: ConvDims,
    ) -> Result<Storage> {
        const OP: &str = "causal_conv1d_backward_x";
        Ok(f32_storage(conv1d::causal_conv1d_backward_x(
            f32s(g, OP, "g")?,
            f32s(weight, OP, "weight")?,
            dims,
        )))
    }
    fn causal_conv1d_backward_params(
        &self,
        x: &Storage,
        g: &Storage,
        dims: ConvDims,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "causal_conv1d_backward_params";
        let (dw, db) =
            conv1d::causal_conv1d_backward_params(f32s(x, OP, "x")?, f32s(g, OP, "g")?, dims);
        Ok((f32_storage(dw), f32_storage(db)))
    }

    // ---- scan ------------------------------------------------------------------------------------

    fn selective_scan(
        &self,
        dims: ScanDims,
        inputs: ScanInputs<&Storage>,
        save: bool,
    ) -> Result<ScanForward<Storage>> {
        let x = inputs.try_map(|s, arg| f32s(s, "selective_scan", arg))?;
        let out = scan::selective_scan(dims, x.u, x.delta, x.a, x.b, x.c, x.d, x.z, x.h0, save);
        Ok(out.map(f32_storage))
    }
    fn selective_scan_backward(
        &self,
        dims: ScanDims,
        inputs: ScanInputs<&Storage>,
        saved: &Storage,
        gy: &Storage,
    ) -> Result<ScanGrads<Storage>> {
        const OP: &str = "selective_scan_backward";
        let x = inputs.try_map(|s, arg| f32s(s, OP, arg))?;
        let (saved, gy) = (f32s(saved, OP, "saved")?, f32s(gy, OP, "gy")?);
        let g =
            scan::selective_scan_backward(dims, x.u, x.delta, x.a, x.b, x.c, x.d, x.z, saved, gy);
        Ok(g.map(f32_storage))
    }

    // ---- mamba_step ------------------------------------------------------------------------------

    fn mamba_step(
        &self,
        w: &MambaStepWeights<'_, Storage>,
        dims: MambaStepDims,
        x: &Storage,
        conv: &mut Storage,
        ssm: &mut Storage,
    ) -> Result<Storage> {
        const OP: &str = "mamba_step";
        let weights = mamba_step::StepWeights {
            norm: f32s(w.norm, OP, "norm")?,
            in_proj: step_weight(w.in_proj, "in_proj")?,
            in_proj_bias: w
                .in_proj_bias
                .map(|s| f32s(s, OP, "in_proj_bias"))
                .transpose()?,
            conv_weight: f32s(w.conv_weight, OP, "conv_weight")?,
            conv_bias: w.conv_bias.map(|s| f32s(s, OP, "conv_bias")).transpose()?,
            x_proj: step_weight(w.x_proj, "x_proj")?,
            dt_proj: step_weight(w.dt_proj, "dt_proj")?,
            dt_bias: f32s(w.dt_bias, OP, "dt_bias")?,
            a_log: f32s(w.a_log, OP, "a_log")?,
            d: f32s(w.d, OP, "d")?,
            out_proj: step_weight(w.out_proj, "out_proj")?,
            out_proj_bias: w
                .out_proj_bias
                .map(|s| f32s(s, OP, "out_proj_bias"))
                .transpose()?,
        };
        let x = f32s(x, OP, "x")?;
        let (Storage::Cpu(CpuStorage::F32(conv)), Storage::Cpu(CpuStorage::F32(ssm))) = (conv, ssm)
        else {
            return Err(not_here(OP, "conv and ssm states", "f32 values on the cpu"));
        };
        Ok(f32_storage(mamba_step::mamba_step(
            &weights, dims, x, conv, ssm,
        )?))
    }

    // ---- layer_mix -------------------------------------------------------------------------------

    fn layer_mix(
        &self,
        xs: &Storage,
        logits: &Storage,
        _layers: usize,
        m: usize,
    ) -> Result<Storage> {
        const OP: &str = "layer_mix";
        Ok(f32_storage(layer_mix::layer_mix(
            f32s(xs, OP, "xs")?,
            f32s(logits, OP, "logits")?,
            m,
        )))
    }
    fn layer_mix_backward(
        &self,
        xs: &Storage,
        logits: &Storage,
        g: &Storage,
        _layers: usize,
        m: usize,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "layer_mix_backward";
        let (dxs, dl) = layer_mix::layer_mix_backward(
            f32s(xs, OP, "xs")?,
            f32s(logits, OP, "logits")?,
            f32s(g, OP, "g")?,
            m,
        );
        Ok((f32_storage(dxs), f32_storage(dl)))
    }

    // ---- cross_entropy ---------------------------------------------------------------------------

    fn log_softmax(&self, x: &Storage, _rows: usize, v: usize) -> Result<Storage> {
        Ok(f32_storage(cross_entropy::log_softmax(
            f32s(x, "log_softmax", "x")?,
            v,
        )))
    }
    fn log_softmax_backward(
        &self,
        x: &Storage,
        g: &Storage,
        _rows: usize,
        v: usize,
    ) -> Result<Storage> {
        const OP: &str = "log_softmax_backward";
        Ok(f32_storage(cross_entropy::log_softmax_backward(
            f32s(x, OP, "x")?,
            f32s(g, OP, "g")?,
            v,
        )))
    }
    fn cross_entropy(
        &self,
        logits: &Storage,
        targets: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        const OP: &str = "cross_entropy";
        let (logits, targets) = (f32s(logits, OP, "logits")?, u32s(targets, OP, "targets")?);
        let loss = cross_entropy::cross_entropy(logits, targets, dims.ignore_index, dims.v);
        Ok(f32_storage(vec![loss]))
    }
    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        targets: &Storage,
        g: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        const OP: &str = "cross_entropy_backward";
        let (logits, targets) = (f32s(logits, OP, "logits")?, u32s(targets, OP, "targets")?);
        let g = f32s(g, OP, "g")?[0];
        Ok(f32_storage(cross_entropy::cross_entropy_backward(
            logits,
            targets,
            dims.ignore_index,
            g,
            dims.v,
        )))
    }

    // ---- gru -------------------------------------------------------------------------------------

    fn gru_gates(
        &self,
        gi: &Storage,
        gh: &Storage,
        h: &Storage,
        _batch: usize,
        hidden: usize,
    ) -> Result<Storage> {
        const OP: &str = "gru_gates";
        Ok(f32_storage(gru::gru_gates(
            f32s(gi, OP, "gi")?,
            f32s(gh, OP, "gh")?,
            f32s(h, OP, "h")?,
            hidden,
        )))
    }
    fn gru_gates_backward(
        &self,
        gi: &Storage,
        gh: &Storage,
        h: &Storage,
        g: &Storage,
        _batch: usize,
        hidden: usize,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "gru_gates_backward";
        let (dgi, dgh, dh) = gru::gru_gates_backward(
            f32s(gi, OP, "gi")?,
            f32s(gh, OP, "gh")?,
            f32s(h, OP, "h")?,
            f32s(g, OP, "g")?,
            hidden,
        );
        Ok((f32_storage(dgi), f32_storage(dgh), f32_storage(dh)))
    }

    // ---- rollout ---------------------------------------------------------------------------------

    fn top_k(
        &self,
        logits: &Storage,
        _rows: usize,
        v: usize,
        k: usize,
        log_probs: bool,
    ) -> Result<(Storage, Storage)> {
        let x = f32s(
            logits,
            if log_probs {
                "topk_log_softmax"
            } else {
                "top_k"
            },
            "logits",
        )?;
        let (values, indices) = rollout::top_k(x, v, k, log_probs);
        Ok((f32_storage(values), Storage::Cpu(CpuStorage::u32(indices))))
    }
    fn sample_logits(
        &self,
        logits: &Storage,
        _rows: usize,
        n: usize,
        draw: SampleDraw,
    ) -> Result<Storage> {
        let x = f32s(logits, "sample_logits", "logits")?;
        Ok(Storage::Cpu(CpuStorage::u32(rollout::sample_logits(
            x, n, draw,
        ))))
    }
    fn certainty(&self, logits: &Storage, _rows: usize, v: usize) -> Result<Storage> {
        let x = f32s(logits, "certainty", "logits")?;
        Ok(f32_storage(rollout::certainty(x, v)))
    }

    // ---- adamw -----------------------------------------------------------------------------------

    fn adamw_step(
        &self,
        inputs: [&Storage; 4],
        _n: usize,
        step: &AdamWStep,
        factors: &AdamWFactors,
    ) -> Result<[Storage; 3]> {
        const OP: &str = "adamw_step";
        let [p, g, m, v] = inputs;
        let (p, m, v) = adamw::adamw_step(
            f32s(p, OP, "param")?,
            f32s(g, OP, "grad")?,
            f32s(m, OP, "m")?,
            f32s(v, OP, "v")?,
            step,
            factors,
        );
        Ok([f32_storage(p), f32_storage(m), f32_storage(v)])
    }
}
