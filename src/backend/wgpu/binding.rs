//! Binding a whole buffer or a slice of its rows, and splitting a launch into row chunks whose
//! slices each fit the adapter's per-binding limit (`max_storage_buffer_binding_size`, 128 MiB on
//! lavapipe): the f32 embedding of a 50280-token vocabulary at D = 768 is 147 MiB, so the kernels
//! that read or write a [V, D] table or [T, V] logits launch once per chunk of rows.
//!
//! A chunk's byte offset must be a multiple of `min_storage_buffer_offset_alignment`; `row_chunks`
//! picks chunk lengths in rows so that it is for every buffer of the launch. This is the one place
//! that logic lives: each launcher says which buffers it slices along which axis and loops.

use std::ops::Range;

use super::{GpuBuffer, WgpuContext};
use crate::error::{Error, Result};

/// What one storage binding of a launch sees: a buffer, or `size` bytes of it from `offset`.
#[derive(Clone, Copy)]
pub struct Binding<'a> {
    pub buffer: &'a GpuBuffer,
    pub offset: u64,
    /// None binds to the end of the buffer.
    pub size: Option<u64>,
}

impl<'a> Binding<'a> {
    pub fn whole(buffer: &'a GpuBuffer) -> Self {
        Binding {
            buffer,
            offset: 0,
            size: None,
        }
    }

    /// Rows `rows` of a buffer holding `total` rows of `row_bytes` each, clipped to the buffer's
    /// end (a last row may be partial, e.g. the last 1024-element block of a sum); the whole
    /// buffer when the range covers it (also when it is empty, so a zero-size slice is never bound).
    pub fn rows(buffer: &'a GpuBuffer, rows: Range<usize>, total: usize, row_bytes: u64) -> Self {
        if rows.start == 0 && rows.end >= total {
            return Binding::whole(buffer);
        }
        let offset = rows.start as u64 * row_bytes;
        let size = (rows.len() as u64 * row_bytes).min(buffer.raw().size().saturating_sub(offset));
        Binding {
            buffer,
            offset,
            size: Some(size),
        }
    }

    /// The bytes the shader sees.
    pub fn bound_bytes(&self) -> u64 {
        self.size
            .unwrap_or_else(|| self.buffer.raw().size().saturating_sub(self.offset))
    }
}

impl<'a> From<&'a GpuBuffer> for Binding<'a> {
    fn from(buffer: &'a GpuBuffer) -> Self {
        Binding::whole(buffer)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl WgpuContext {
    /// Consecutive row ranges covering `0..rows` such that, for every buffer sliced along these
    /// rows (`row_bytes[i]` bytes per row), a chunk fits the per-binding limit and starts at an
    /// aligned byte offset. One range when everything fits already (the usual case).
    ///
    /// Chunks hold a multiple of `step` rows, the fewest rows whose bytes are a multiple of the
    /// alignment for every buffer, so only the last chunk is ragged. When even `step` rows (one
    /// row, for row sizes that are multiples of the alignment) exceed the limit the op cannot be
    /// split along this axis: `Error::BindingTooLarge` naming `op`.
    pub fn row_chunks(
        &self,
        op: &'static str,
        rows: usize,
        row_bytes: &[u64],
    ) -> Result<Vec<Range<usize>>> {
        let limit = self.limits().max_storage_buffer_binding_size;
        let align = self.limits().min_storage_buffer_offset_alignment as u64;
        let widest = row_bytes.iter().copied().max().unwrap_or(0);
        if widest == 0 || rows as u64 * widest <= limit {
            return Ok(std::iter::once(0..rows).collect());
        }
        let step = row_bytes
            .iter()
            .filter(|&&b| b > 0)
            .map(|&b| align / gcd(align, b))
            .fold(1, |acc, s| acc / gcd(acc, s) * s);
        let per_chunk = (limit / widest) / step * step;
        if per_chunk == 0 {
            // One row too large, or the fewest rows an aligned chunk can hold.
            let rows_needed = if widest > limit { 1 } else { step };
            return Err(Error::BindingTooLarge {
                op,
                bytes: rows_needed * widest,
                limit,
            });
        }
        let per_chunk = per_chunk as usize;
        Ok((0..rows)
            .step_by(per_chunk)
            .map(|start| start..(start + per_chunk).min(rows))
            .collect())
    }
}
