//! The meta backend's side of the contract: each kernel returns storage of its result's size (the
//! sizes the cpu backend's results have, so the two count the same bytes) and computes nothing.

use std::sync::Arc;

use super::storage::{Counters, MetaStorage};
use crate::backend::contract::Backend;
use crate::backend::memory::MemoryStats;
use crate::backend::params::{
    AdamWFactors, AdamWStep, BinaryOp, ColumnBlock, ConvDims, CrossEntropyDims, EmbeddingDims,
    MatmulDims, MatmulPrecision, ScanDims, ScanForward, ScanGrads, ScanInputs, UnaryOp,
};
use crate::backend::storage::Storage;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// A shapes-only device; clones share one byte count.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    counters: Arc<Counters>,
}

impl Meta {
    /// A new device with its own counters (nothing live).
    pub fn new() -> Self {
        Self::default()
    }

    /// The device whose storage counts on `counters`.
    pub fn with_counters(counters: Arc<Counters>) -> Self {
        Meta { counters }
    }

    /// Whether both are the same device (share their counters).
    pub fn same_as(&self, other: &Meta) -> bool {
        Arc::ptr_eq(&self.counters, &other.counters)
    }

    fn f32(&self, n: usize) -> Storage {
        Storage::Meta(MetaStorage::new(n, 4, &self.counters))
    }

    fn of(&self, n: usize, dtype: DType) -> Storage {
        let bytes = match dtype {
            DType::BF16 => 2,
            DType::F32 | DType::U32 => 4,
        };
        Storage::Meta(MetaStorage::new(n, bytes, &self.counters))
    }
}

/// The element count of meta storage.
fn len(s: &Storage, op: &'static str) -> Result<usize> {
    match s {
        Storage::Meta(m) => Ok(m.len),
        _ => Err(Error::InvalidArgument {
            op,
            detail: "an input is not meta storage".to_string(),
        }),
    }
}

impl Backend for Meta {
    fn name(&self) -> String {
        "meta".to_string()
    }

    // ---- memory ----------------------------------------------------------------------------------

    fn store_f32(&self, data: Vec<f32>) -> Result<Storage> {
        Ok(self.f32(data.len()))
    }
    fn store_u32(&self, data: Vec<u32>) -> Result<Storage> {
        Ok(self.of(data.len(), DType::U32))
    }
    /// No host vector: the point of this backend.
    fn zeros(&self, n: usize) -> Result<Storage> {
        Ok(self.f32(n))
    }
    fn to_vec_f32(&self, x: &Storage) -> Result<Vec<f32>> {
        Ok(vec![0.0; len(x, "to_vec_f32")?])
    }
    fn to_vec_u32(&self, x: &Storage) -> Result<Vec<u32>> {
        Ok(vec![0; len(x, "to_vec_u32")?])
    }
    fn duplicate(&self, x: &Storage) -> Result<Storage> {
        match x {
            Storage::Meta(m) => Ok(Storage::Meta(MetaStorage::new(
                m.len,
                m.elem_bytes,
                &self.counters,
            ))),
            _ => len(x, "duplicate").map(|n| self.f32(n)),
        }
    }
    fn memory_stats(&self) -> MemoryStats {
        self.counters.stats()
    }
    fn reset_peak(&self) {
        self.counters.reset_peak()
    }

    // ---- binary, unary ---------------------------------------------------------------------------

    fn binary(&self, _: BinaryOp, a: &Storage, _: &Storage, _: usize, _: usize) -> Result<Storage> {
        Ok(self.f32(len(a, "binary")?))
    }
    /// In place, as on the cpu: nothing new.
    fn add_assign(&self, _: &mut Storage, _: &Storage, _: usize) -> Result<()> {
        Ok(())
    }
    fn unary(&self, _: UnaryOp, x: &Storage, _: usize) -> Result<Storage> {
        Ok(self.f32(len(x, "unary")?))
    }
    fn unary_backward(&self, _: UnaryOp, x: &Storage, _: &Storage, _: usize) -> Result<Storage> {
        Ok(self.f32(len(x, "unary_backward")?))
    }

    // ---- reduce ----------------------------------------------------------------------------------

    fn sum(&self, _: &Storage, _: usize, _: bool) -> Result<Storage> {
        Ok(self.f32(1))
    }
    fn sum_columns(&self, _: &Storage, _: usize, cols: usize) -> Result<Storage> {
        Ok(self.f32(cols))
    }
    fn expand(&self, _: &Storage, _: usize, n: usize) -> Result<Storage> {
        Ok(self.f32(n))
    }

    // ---- matmul ----------------------------------------------------------------------------------

    fn matmul(
        &self,
        _: &Storage,
        _: &Storage,
        d: MatmulDims,
        _: MatmulPrecision,
    ) -> Result<Storage> {
        Ok(self.f32(d.m * d.n))
    }
    fn to_bf16(&self, _: &Storage, n: usize) -> Result<Storage> {
        Ok(self.of(n, DType::BF16))
    }
    fn matmul_bf16_weights(
        &self,
        _: &Storage,
        _: &Storage,
        m: usize,
        _: usize,
        n: usize,
    ) -> Result<Storage> {
        Ok(self.f32(m * n))
    }

    // ---- embedding -------------------------------------------------------------------------------

    fn embedding(&self, _: &Storage, _: &[u32], _: &Storage, d: EmbeddingDims) -> Result<Storage> {
        Ok(self.f32(d.n * d.d))
    }
    fn embedding_backward(&self, _: &[u32], _: &Storage, d: EmbeddingDims) -> Result<Storage> {
        Ok(self.f32(d.v * d.d))
    }

    // ---- shape -----------------------------------------------------------------------------------

    fn narrow(&self, _: &Storage, dtype: DType, b: ColumnBlock) -> Result<Storage> {
        Ok(self.of(b.outer * b.width, dtype))
    }
    fn narrow_backward(&self, _: &Storage, b: ColumnBlock) -> Result<Storage> {
        Ok(self.f32(b.outer * b.cols))
    }
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, dtype: DType) -> Result<Storage> {
        let width: usize = parts.iter().map(|&(_, w)| w).sum();
        Ok(self.of(outer * width, dtype))
    }

    // ---- rmsnorm ---------------------------------------------------------------------------------

    fn rms_norm(&self, x: &Storage, _: &Storage, _: usize, _: usize, _: f32) -> Result<Storage> {
        Ok(self.f32(len(x, "rms_norm")?))
    }
    fn rms_norm_backward(
        &self,
        x: &Storage,
        _: &Storage,
        _: &Storage,
        _: usize,
        d: usize,
        _: f32,
    ) -> Result<(Storage, Storage)> {
        Ok((self.f32(len(x, "rms_norm_backward")?), self.f32(d)))
    }

    // ---- conv1d ----------------------------------------------------------------------------------

    fn causal_conv1d(
        &self,
        _: &Storage,
        _: &Storage,
        _: Option<&Storage>,
        d: ConvDims,
    ) -> Result<Storage> {
        Ok(self.f32(d.b * d.l * d.c))
    }
    fn causal_conv1d_backward_x(&self, _: &Storage, _: &Storage, d: ConvDims) -> Result<Storage> {
        Ok(self.f32(d.b * d.l * d.c))
    }
    fn causal_conv1d_backward_params(
        &self,
        _: &Storage,
        _: &Storage,
        d: ConvDims,
    ) -> Result<(Storage, Storage)> {
        Ok((self.f32(d.c * d.k), self.f32(d.c)))
    }

    // ---- scan ------------------------------------------------------------------------------------

    fn selective_scan(
        &self,
        d: ScanDims,
        _: ScanInputs<&Storage>,
        save: bool,
    ) -> Result<ScanForward<Storage>> {
        let state = d.batch * d.chan * d.state;
        Ok(ScanForward {
            y: self.f32(d.batch * d.len * d.chan),
            last: self.f32(state),
            saved: save.then(|| self.f32(d.n_chunks() * state)),
        })
    }
    fn selective_scan_backward(
        &self,
        d: ScanDims,
        inputs: ScanInputs<&Storage>,
        _: &Storage,
        _: &Storage,
    ) -> Result<ScanGrads<Storage>> {
        let (ble, bln) = (d.batch * d.len * d.chan, d.batch * d.len * d.state);
        Ok(ScanGrads {
            du: self.f32(ble),
            ddelta: self.f32(ble),
            da: self.f32(d.chan * d.state),
            db: self.f32(bln),
            dc: self.f32(bln),
            dd: self.f32(d.chan),
            dz: inputs.z.map(|_| self.f32(ble)),
            dh0: self.f32(d.batch * d.chan * d.state),
        })
    }

    // ---- layer_mix -------------------------------------------------------------------------------

    fn layer_mix(&self, _: &Storage, _: &Storage, _: usize, m: usize) -> Result<Storage> {
        Ok(self.f32(m))
    }
    fn layer_mix_backward(
        &self,
        _: &Storage,
        _: &Storage,
        _: &Storage,
        layers: usize,
        m: usize,
    ) -> Result<(Storage, Storage)> {
        Ok((self.f32(layers * m), self.f32(layers)))
    }

    // ---- cross_entropy ---------------------------------------------------------------------------

    fn log_softmax(&self, _: &Storage, rows: usize, v: usize) -> Result<Storage> {
        Ok(self.f32(rows * v))
    }
    fn log_softmax_backward(
        &self,
        _: &Storage,
        _: &Storage,
        rows: usize,
        v: usize,
    ) -> Result<Storage> {
        Ok(self.f32(rows * v))
    }
    fn cross_entropy(&self, _: &Storage, _: &Storage, _: CrossEntropyDims) -> Result<Storage> {
        Ok(self.f32(1))
    }
    fn cross_entropy_backward(
        &self,
        _: &Storage,
        _: &Storage,
        _: &Storage,
        d: CrossEntropyDims,
    ) -> Result<Storage> {
        Ok(self.f32(d.rows * d.v))
    }

    // ---- gru -------------------------------------------------------------------------------------

    fn gru_gates(
        &self,
        _: &Storage,
        _: &Storage,
        _: &Storage,
        b: usize,
        h: usize,
    ) -> Result<Storage> {
        Ok(self.f32(b * h))
    }
    fn gru_gates_backward(
        &self,
        _: &Storage,
        _: &Storage,
        _: &Storage,
        _: &Storage,
        b: usize,
        h: usize,
    ) -> Result<(Storage, Storage, Storage)> {
        Ok((self.f32(b * 3 * h), self.f32(b * 3 * h), self.f32(b * h)))
    }

    // ---- adamw -----------------------------------------------------------------------------------

    fn adamw_step(
        &self,
        _: [&Storage; 4],
        n: usize,
        _: &AdamWStep,
        _: &AdamWFactors,
    ) -> Result<[Storage; 3]> {
        Ok([self.f32(n), self.f32(n), self.f32(n)])
    }
}
