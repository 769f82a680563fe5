//! The backend contract: every kernel family a device can run, as one trait with typed parameters
//! (`params.rs`), in the spirit of candle's `BackendStorage` and burn's `Backend`. An op in
//! `src/ops/` checks shapes and dtypes, calls its device's kernel through this trait and records
//! its backward on the tape; it never looks inside a `Storage`.
//!
//! Every method has a default that returns `Error::Unsupported` naming the kernel and the device,
//! so a backend that lacks a kernel compiles and fails at run time, in the one op that needs it.
//! Inputs are `&Storage` already checked by the op (shapes, dtypes, one device); sizes come as
//! plain numbers or the structs of `params.rs`; results are new storage (ops are functional).
//!
//! Forward above backward, families in the order of `docs/ARCHITECTURE.md`'s table.

use super::memory::MemoryStats;
use super::params::{
    AdamWFactors, AdamWStep, BinaryOp, ColumnBlock, ConvDims, CrossEntropyDims, EmbeddingDims,
    MambaStepDims, MambaStepWeights, MatmulDims, MatmulPrecision, SampleDraw, ScanDims,
    ScanForward, ScanGrads, ScanInputs, UnaryOp,
};
use super::storage::Storage;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The result of a kernel the backend does not implement.
fn unsupported<T>(backend: &(impl Backend + ?Sized), op: &'static str) -> Result<T> {
    Err(Error::Unsupported {
        op,
        device: backend.name(),
    })
}

#[allow(clippy::too_many_arguments)]
pub trait Backend: Send + Sync {
    /// The device's human name (`cpu`, `wgpu:<adapter>`), as errors print it.
    fn name(&self) -> String;

    // ---- memory ----------------------------------------------------------------------------------

    /// New storage holding `data`.
    fn store_f32(&self, data: Vec<f32>) -> Result<Storage>;
    fn store_u32(&self, data: Vec<u32>) -> Result<Storage>;
    /// `n` f32 zeros.
    fn zeros(&self, n: usize) -> Result<Storage> {
        self.store_f32(vec![0.0; n])
    }
    /// The values, copied to the host (on a device: waits for the work that writes them).
    fn to_vec_f32(&self, x: &Storage) -> Result<Vec<f32>>;
    fn to_vec_u32(&self, x: &Storage) -> Result<Vec<u32>>;
    /// A copy of `x` in new storage on the same device.
    fn duplicate(&self, x: &Storage) -> Result<Storage>;
    /// Bytes held by tensors now and at the peak since `reset_peak`.
    fn memory_stats(&self) -> MemoryStats;
    fn reset_peak(&self);

    // ---- binary, unary ---------------------------------------------------------------------------

    /// a [n] op b, with b [nb] repeated over rows of nb (or one element).
    fn binary(
        &self,
        op: BinaryOp,
        a: &Storage,
        b: &Storage,
        n: usize,
        nb: usize,
    ) -> Result<Storage> {
        let _ = (a, b, n, nb);
        unsupported(self, op.name())
    }
    /// acc += x, in place (n elements each). Backends without it answer `Unsupported` and the
    /// caller adds functionally.
    fn add_assign(&self, acc: &mut Storage, x: &Storage, n: usize) -> Result<()> {
        let _ = (acc, x, n);
        unsupported(self, "add_assign")
    }
    fn unary(&self, op: UnaryOp, x: &Storage, n: usize) -> Result<Storage> {
        let _ = (x, n);
        unsupported(self, op.name())
    }
    /// The input's gradient of `silu` or `softplus` from x and the output's gradient g.
    fn unary_backward(&self, op: UnaryOp, x: &Storage, g: &Storage, n: usize) -> Result<Storage> {
        let _ = (op, x, g, n);
        unsupported(self, "unary_backward")
    }

    // ---- reduce ----------------------------------------------------------------------------------

    /// The sum of x [n] (of its squares when `square`), one element.
    fn sum(&self, x: &Storage, n: usize, square: bool) -> Result<Storage> {
        let _ = (x, n, square);
        unsupported(self, "sum")
    }
    /// x [rows, cols] summed over rows -> [cols].
    fn sum_columns(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        let _ = (x, rows, cols);
        unsupported(self, "sum_columns")
    }
    /// x [nx] repeated to n elements (nx divides n).
    fn expand(&self, x: &Storage, nx: usize, n: usize) -> Result<Storage> {
        let _ = (x, nx, n);
        unsupported(self, "expand")
    }

    // ---- matmul ----------------------------------------------------------------------------------

    fn matmul(
        &self,
        a: &Storage,
        b: &Storage,
        dims: MatmulDims,
        precision: MatmulPrecision,
    ) -> Result<Storage> {
        let _ = (a, b, dims);
        unsupported(
            self,
            match precision {
                MatmulPrecision::F32 => "matmul",
                MatmulPrecision::F16Operands => "matmul_f16",
            },
        )
    }

    /// x [n] f32 rounded to bf16 storage (inference weights).
    fn to_bf16(&self, x: &Storage, n: usize) -> Result<Storage> {
        let _ = (x, n);
        unsupported(self, "to_bf16")
    }
    /// C [m, n] = A [m, k] W^T with W [n, k] in bf16 and f32 arithmetic (inference weights).
    fn matmul_bf16_weights(
        &self,
        a: &Storage,
        w: &Storage,
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Storage> {
        let _ = (a, w, m, k, n);
        unsupported(self, "matmul_bf16_weights")
    }

    // ---- embedding -------------------------------------------------------------------------------

    /// Rows of table [v, d] picked by ids [n] (`host_ids` is the same ids, already on the host and
    /// checked < v) -> [n, d].
    fn embedding(
        &self,
        ids: &Storage,
        host_ids: &[u32],
        table: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let _ = (ids, host_ids, table, dims);
        unsupported(self, "embedding")
    }
    /// g [n, d] added into the rows the ids name of a zero [v, d] table, in token order.
    fn embedding_backward(
        &self,
        host_ids: &[u32],
        g: &Storage,
        dims: EmbeddingDims,
    ) -> Result<Storage> {
        let _ = (host_ids, g, dims);
        unsupported(self, "embedding_backward")
    }

    // ---- shape -----------------------------------------------------------------------------------

    /// The block of columns of x viewed as [outer, cols] -> [outer, width] (f32 or u32).
    fn narrow(&self, x: &Storage, dtype: DType, block: ColumnBlock) -> Result<Storage> {
        let _ = (x, dtype, block);
        unsupported(self, "narrow")
    }
    /// g [outer, width] placed in a zero [outer, cols] (f32).
    fn narrow_backward(&self, g: &Storage, block: ColumnBlock) -> Result<Storage> {
        let _ = (g, block);
        unsupported(self, "narrow_backward")
    }
    /// Parts [outer, width_i] side by side -> [outer, sum width_i] (f32 or u32).
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, dtype: DType) -> Result<Storage> {
        let _ = (parts, outer, dtype);
        unsupported(self, "concat")
    }

    // ---- rmsnorm ---------------------------------------------------------------------------------

    /// x [rows, d] normalised per row, times weight [d].
    fn rms_norm(
        &self,
        x: &Storage,
        weight: &Storage,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<Storage> {
        let _ = (x, weight, rows, d, eps);
        unsupported(self, "rms_norm")
    }
    /// (dx [rows, d], dweight [d]).
    fn rms_norm_backward(
        &self,
        x: &Storage,
        weight: &Storage,
        g: &Storage,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<(Storage, Storage)> {
        let _ = (x, weight, g, rows, d, eps);
        unsupported(self, "rms_norm_backward")
    }

    // ---- conv1d ----------------------------------------------------------------------------------

    /// x [B, L, C], weight [C, K], bias [C] -> [B, L, C].
    fn causal_conv1d(
        &self,
        x: &Storage,
        weight: &Storage,
        bias: Option<&Storage>,
        dims: ConvDims,
    ) -> Result<Storage> {
        let _ = (x, weight, bias, dims);
        unsupported(self, "causal_conv1d")
    }
    fn causal_conv1d_backward_x(
        &self,
        g: &Storage,
        weight: &Storage,
        dims: ConvDims,
    ) -> Result<Storage> {
        let _ = (g, weight, dims);
        unsupported(self, "causal_conv1d_backward_x")
    }
    /// (dweight [C, K], dbias [C]).
    fn causal_conv1d_backward_params(
        &self,
        x: &Storage,
        g: &Storage,
        dims: ConvDims,
    ) -> Result<(Storage, Storage)> {
        let _ = (x, g, dims);
        unsupported(self, "causal_conv1d_backward_params")
    }

    // ---- scan ------------------------------------------------------------------------------------

    /// The selective scan; the chunk-boundary states come back when `save`.
    fn selective_scan(
        &self,
        dims: ScanDims,
        inputs: ScanInputs<&Storage>,
        save: bool,
    ) -> Result<ScanForward<Storage>> {
        let _ = (dims, inputs, save);
        unsupported(self, "selective_scan")
    }
    /// Every gradient of a scan from y's gradient gy and the forward's saved states (h0 unused).
    fn selective_scan_backward(
        &self,
        dims: ScanDims,
        inputs: ScanInputs<&Storage>,
        saved: &Storage,
        gy: &Storage,
    ) -> Result<ScanGrads<Storage>> {
        let _ = (dims, inputs, saved, gy);
        unsupported(self, "selective_scan_backward")
    }

    // ---- mamba_step ------------------------------------------------------------------------------

    /// One fused decode step of a Mamba block: x [B, D] -> x + Mixer(RMSNorm(x)) [B, D], with the
    /// conv state [B, K-1, E] and SSM state [B, E, N] advanced in place. Inference only (no
    /// backward); without it the model composes the step from the ops above.
    fn mamba_step(
        &self,
        weights: &MambaStepWeights<'_, Storage>,
        dims: MambaStepDims,
        x: &Storage,
        conv: &mut Storage,
        ssm: &mut Storage,
    ) -> Result<Storage> {
        let _ = (weights, dims, x, conv, ssm);
        unsupported(self, "mamba_step")
    }

    // ---- layer_mix -------------------------------------------------------------------------------

    /// xs [layers, m], logits [layers] -> [m].
    fn layer_mix(
        &self,
        xs: &Storage,
        logits: &Storage,
        layers: usize,
        m: usize,
    ) -> Result<Storage> {
        let _ = (xs, logits, layers, m);
        unsupported(self, "layer_mix")
    }
    /// (dxs [layers, m], dlogits [layers]).
    fn layer_mix_backward(
        &self,
        xs: &Storage,
        logits: &Storage,
        g: &Storage,
        layers: usize,
        m: usize,
    ) -> Result<(Storage, Storage)> {
        let _ = (xs, logits, g, layers, m);
        unsupported(self, "layer_mix_backward")
    }

    // ---- cross_entropy ---------------------------------------------------------------------------

    /// log_softmax of x [rows, v] over v.
    fn log_softmax(&self, x: &Storage, rows: usize, v: usize) -> Result<Storage> {
        let _ = (x, rows, v);
        unsupported(self, "log_softmax")
    }
    fn log_softmax_backward(
        &self,
        x: &Storage,
        g: &Storage,
        rows: usize,
        v: usize,
    ) -> Result<Storage> {
        let _ = (x, g, rows, v);
        unsupported(self, "log_softmax_backward")
    }
    /// The mean loss over kept rows, one element.
    fn cross_entropy(
        &self,
        logits: &Storage,
        targets: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        let _ = (logits, targets, dims);
        unsupported(self, "cross_entropy")
    }
    /// dlogits [rows, v] from the loss's gradient g (one element).
    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        targets: &Storage,
        g: &Storage,
        dims: CrossEntropyDims,
    ) -> Result<Storage> {
        let _ = (logits, targets, g, dims);
        unsupported(self, "cross_entropy_backward")
    }

    // ---- gru -------------------------------------------------------------------------------------

    /// gi, gh [B, 3H], h [B, H] -> h' [B, H].
    fn gru_gates(
        &self,
        gi: &Storage,
        gh: &Storage,
        h: &Storage,
        batch: usize,
        hidden: usize,
    ) -> Result<Storage> {
        let _ = (gi, gh, h, batch, hidden);
        unsupported(self, "gru_gates")
    }
    /// (d gi, d gh, d h).
    fn gru_gates_backward(
        &self,
        gi: &Storage,
        gh: &Storage,
        h: &Storage,
        g: &Storage,
        batch: usize,
        hidden: usize,
    ) -> Result<(Storage, Storage, Storage)> {
        let _ = (gi, gh, h, g, batch, hidden);
        unsupported(self, "gru_gates_backward")
    }

    // ---- rollout ---------------------------------------------------------------------------------
    // The planner's kernels: forward only (inference; nothing differentiates them).

    /// logits [rows, v] -> (values [rows, k] f32, indices [rows, k] u32): each row's k largest in
    /// descending order, ties by the lower index; with `log_probs` the values are the log-softmax
    /// of those entries under the whole row.
    fn top_k(
        &self,
        logits: &Storage,
        rows: usize,
        v: usize,
        k: usize,
        log_probs: bool,
    ) -> Result<(Storage, Storage)> {
        let _ = (logits, rows, v, k);
        unsupported(
            self,
            if log_probs {
                "topk_log_softmax"
            } else {
                "top_k"
            },
        )
    }
    /// logits [rows, n] -> [rows] u32: one Gumbel-max draw per row (`SampleDraw`).
    fn sample_logits(
        &self,
        logits: &Storage,
        rows: usize,
        n: usize,
        draw: SampleDraw,
    ) -> Result<Storage> {
        let _ = (logits, rows, n, draw);
        unsupported(self, "sample_logits")
    }
    /// logits [rows, v] -> [rows]: sum_j p_j ln p_j of softmax(row).
    fn certainty(&self, logits: &Storage, rows: usize, v: usize) -> Result<Storage> {
        let _ = (logits, rows, v);
        unsupported(self, "certainty")
    }

    // ---- adamw -----------------------------------------------------------------------------------

    /// [param, m, v] after one update of n elements.
    fn adamw_step(
        &self,
        inputs: [&Storage; 4],
        n: usize,
        step: &AdamWStep,
        factors: &AdamWFactors,
    ) -> Result<[Storage; 3]> {
        let _ = (inputs, n, step, factors);
        unsupported(self, "adamw_step")
    }
}
