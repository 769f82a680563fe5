//! Device memory of the cuda backend: one `CudaBuffer` per tensor, typed by its element (f32, u32
//! or bf16 bits), counted in its device's `MemoryStats` while it lives.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, DeviceRepr};

use super::context::{CudaDevice, driver_err};
use crate::error::{Error, Result};

/// The elements of one buffer. Slices hold at least one element (the driver refuses empty
/// allocations); `CudaBuffer::len` is the tensor's count.
pub enum Words {
    F32(CudaSlice<f32>),
    U32(CudaSlice<u32>),
    /// bfloat16 bits.
    Bf16(CudaSlice<u16>),
}

/// A tensor's device memory. Made by `CudaDevice`'s allocators, which count its bytes; dropping it
/// uncounts them (the driver's stream-ordered free follows the work that reads it).
pub struct CudaBuffer {
    words: Words,
    len: usize,
    device: Arc<CudaDevice>,
}

impl CudaBuffer {
    pub(super) fn new(words: Words, len: usize, device: Arc<CudaDevice>) -> Self {
        device.counters().allocated(bytes(&words, len));
        CudaBuffer { words, len, device }
    }

    /// The device this buffer lives on.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    /// The element count.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn words(&self) -> &Words {
        &self.words
    }

    /// The f32 slice, or an error naming the op and the argument.
    pub fn f32(&self, op: &'static str, arg: &'static str) -> Result<&CudaSlice<f32>> {
        match &self.words {
            Words::F32(s) => Ok(s),
            _ => Err(wrong(op, arg, "f32")),
        }
    }

    pub fn f32_mut(&mut self, op: &'static str, arg: &'static str) -> Result<&mut CudaSlice<f32>> {
        match &mut self.words {
            Words::F32(s) => Ok(s),
            _ => Err(wrong(op, arg, "f32")),
        }
    }

    pub fn u32(&self, op: &'static str, arg: &'static str) -> Result<&CudaSlice<u32>> {
        match &self.words {
            Words::U32(s) => Ok(s),
            _ => Err(wrong(op, arg, "u32")),
        }
    }

    pub fn u32_mut(&mut self, op: &'static str, arg: &'static str) -> Result<&mut CudaSlice<u32>> {
        match &mut self.words {
            Words::U32(s) => Ok(s),
            _ => Err(wrong(op, arg, "u32")),
        }
    }

    pub fn bf16_mut(&mut self, op: &'static str, arg: &'static str) -> Result<&mut CudaSlice<u16>> {
        match &mut self.words {
            Words::Bf16(s) => Ok(s),
            _ => Err(wrong(op, arg, "bf16")),
        }
    }

    pub fn bf16(&self, op: &'static str, arg: &'static str) -> Result<&CudaSlice<u16>> {
        match &self.words {
            Words::Bf16(s) => Ok(s),
            _ => Err(wrong(op, arg, "bf16")),
        }
    }
}

/// The allocators: every buffer is made here, so each is counted once (the device knows nothing
/// of buffers; a buffer knows its device).
impl CudaDevice {
    /// `n` f32 the caller's kernel writes in full (not initialised).
    pub(super) fn alloc_f32(self: &Arc<Self>, n: usize) -> Result<CudaBuffer> {
        // SAFETY: device memory; the launching kernel writes every element before any read.
        let s = unsafe { self.stream().alloc::<f32>(n.max(1)) }
            .map_err(|e| driver_err("cuMemAlloc", e))?;
        Ok(CudaBuffer::new(Words::F32(s), n, self.clone()))
    }

    pub(super) fn alloc_u32(self: &Arc<Self>, n: usize) -> Result<CudaBuffer> {
        // SAFETY: as `alloc_f32`.
        let s = unsafe { self.stream().alloc::<u32>(n.max(1)) }
            .map_err(|e| driver_err("cuMemAlloc", e))?;
        Ok(CudaBuffer::new(Words::U32(s), n, self.clone()))
    }

    pub(super) fn alloc_bf16(self: &Arc<Self>, n: usize) -> Result<CudaBuffer> {
        // SAFETY: as `alloc_f32`.
        let s = unsafe { self.stream().alloc::<u16>(n.max(1)) }
            .map_err(|e| driver_err("cuMemAlloc", e))?;
        Ok(CudaBuffer::new(Words::Bf16(s), n, self.clone()))
    }

    /// `n` f32 zeros.
    pub(super) fn zeros_f32(self: &Arc<Self>, n: usize) -> Result<CudaBuffer> {
        let s = self
            .stream()
            .alloc_zeros::<f32>(n.max(1))
            .map_err(|e| driver_err("cuMemAlloc", e))?;
        Ok(CudaBuffer::new(Words::F32(s), n, self.clone()))
    }

    pub(super) fn upload_f32(self: &Arc<Self>, data: &[f32]) -> Result<CudaBuffer> {
        let s = self.upload(data, 0.0)?;
        Ok(CudaBuffer::new(Words::F32(s), data.len(), self.clone()))
    }

    pub(super) fn upload_u32(self: &Arc<Self>, data: &[u32]) -> Result<CudaBuffer> {
        let s = self.upload(data, 0)?;
        Ok(CudaBuffer::new(Words::U32(s), data.len(), self.clone()))
    }

    /// A host slice on the device (one `pad` element for an empty one).
    fn upload<T: DeviceRepr + Copy>(
        &self,
        data: &[T],
        pad: T,
    ) -> Result<cudarc::driver::CudaSlice<T>> {
        let r = if data.is_empty() {
            self.stream().clone_htod(&[pad][..])
        } else {
            self.stream().clone_htod(data)
        };
        r.map_err(|e| driver_err("cuMemcpyHtoD", e))
    }
}

fn bytes(words: &Words, len: usize) -> u64 {
    len as u64
        * match words {
            Words::F32(_) | Words::U32(_) => 4,
            Words::Bf16(_) => 2,
        }
}

fn wrong(op: &'static str, arg: &'static str, what: &str) -> Error {
    Error::InvalidArgument {
        op,
        detail: format!("{arg} is not {what} values on this cuda device"),
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        self.device.counters().freed(bytes(&self.words, self.len));
    }
}
