//! One safetensors file: parse (with the `safetensors` crate, the reference implementation HF
//! uses) and widen to f32, or serialize f32 and write atomically.
//!
//! The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length
//! N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}`,
//! then the tensor bytes, contiguous, with offsets relative to the end of the header.
//!
//! The crate validates everything, but several of its errors do not say which tensor is wrong
//! (`TensorInvalidInfo`, `MetadataIncompleteBuffer`), so on failure `diagnose` re-reads the header
//! to name the tensor and the numbers that disagree.

use std::borrow::Cow;
use std::path::Path;

use ::safetensors::tensor::TensorInfo;
use ::safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use half::{bf16, f16};

use super::atomic::write_atomic;
use super::{HostTensor, TensorMap};
use crate::error::{Error, Result};

/// The length prefix of every safetensors file.
const PREFIX: usize = 8;

/// Stands in for a tensor name in errors about the file as a whole.
const HEADER: &str = "(header)";

fn checkpoint_err(file: &str, tensor: &str, detail: impl Into<String>) -> Error {
    Error::Checkpoint {
        file: file.to_string(),
        tensor: tensor.to_string(),
        detail: detail.into(),
    }
}

// ---- reading -------------------------------------------------------------------------------------

/// Reads every tensor of one safetensors file as f32. F32, F16 and BF16 are accepted; I32 and I64
/// only when every value is exactly representable as f32; any other dtype is an error naming the
/// tensor.
pub fn load_safetensors_file(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&path.display().to_string(), &bytes)
}

/// Parses a whole file already in memory; `file` only names it in errors.
pub(crate) fn parse(file: &str, bytes: &[u8]) -> Result<TensorMap> {
    // Checked here, before the crate, so that the two commonest corruptions (an empty or cut-off
    // file, and something that is not safetensors at all) get a message that says so.
    let Some(prefix) = bytes.first_chunk::<PREFIX>() else {
        return Err(checkpoint_err(
            file,
            HEADER,
            format!(
                "file is {} bytes, too short for the 8-byte header length (empty, truncated, or not safetensors)",
                bytes.len()
            ),
        ));
    };
    let header_len = u64::from_le_bytes(*prefix);
    let rest = (bytes.len() - PREFIX) as u64;
    if header_len > rest {
        return Err(checkpoint_err(
            file,
            HEADER,
            format!(
                "the length prefix declares a {header_len}-byte header but only {rest} bytes follow (truncated, or not safetensors)"
            ),
        ));
    }

    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        // header_len <= rest, checked above, so this slice is in bounds and the cast is lossless.
        let header_end = PREFIX + header_len as usize;
        diagnose(file, &bytes[PREFIX..header_end], bytes.len() - header_end)
            .unwrap_or_else(|| crate_err(file, e))
    })?;

    let mut out = TensorMap::new();
    for (name, view) in st.iter() {
        let data = to_f32(file, name, view.dtype(), view.data())?;
        out.insert(
            name.to_string(),
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Widens one tensor's little-endian bytes to f32. The crate has already checked that the byte
/// count matches shape x dtype, so `chunks_exact` leaves no remainder.
fn to_f32(file: &str, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    match dtype {
        Dtype::F32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        Dtype::F16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        Dtype::BF16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        // Integer tensors (ids, counters) load only when f32 keeps every value exactly.
        Dtype::I32 => exact_ints(
            file,
            name,
            bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
        ),
        Dtype::I64 => exact_ints(
            file,
            name,
            bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        ),
        other => Err(checkpoint_err(
            file,
            name,
            format!(
                "dtype {other:?} is not supported (crsm reads F32, F16, BF16, and I32/I64 that f32 holds exactly)"
            ),
        )),
    }
}

fn exact_ints(file: &str, name: &str, values: impl Iterator<Item = i64>) -> Result<Vec<f32>> {
    values
        .enumerate()
        .map(|(i, v)| {
            let f = v as f32;
            // i128 so that a value rounded up to 2^63 cannot saturate back to i64::MAX and pass.
            if f as i128 == v as i128 {
                Ok(f)
            } else {
                Err(checkpoint_err(
                    file,
                    name,
                    format!("integer {v} at index {i} is not exactly representable as f32"),
                ))
            }
        })
        .collect()
}

/// Finds the first tensor whose header entry disagrees with its neighbours or with the file, and
/// says how. None when the header is not JSON at all, or when nothing is found (the crate's own
/// error is then reported instead).
fn diagnose(file: &str, header: &[u8], data_len: usize) -> Option<Error> {
    let text = std::str::from_utf8(header).ok()?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let mut entries = Vec::new();
    for (name, value) in map {
        if name == "__metadata__" {
            continue;
        }
        match serde_json::from_value::<TensorInfo>(value) {
            Ok(info) => entries.push((name, info)),
            Err(e) => {
                return Some(checkpoint_err(
                    file,
                    &name,
                    format!("bad header entry: {e}"),
                ));
            }
        }
    }
    entries.sort_by_key(|(_, info)| info.data_offsets);

    let mut end_of_previous = 0usize;
    for (name, info) in &entries {
        let (begin, end) = info.data_offsets;
        let err = |detail: String| Some(checkpoint_err(file, name, detail));
        if end < begin {
            return err(format!(
                "data_offsets [{begin}, {end}] end before they begin"
            ));
        }
        if begin > end_of_previous {
            return err(format!(
                "data_offsets begin at byte {begin} but the previous tensor ends at {end_of_previous} (a gap)"
            ));
        }
        if begin < end_of_previous {
            return err(format!(
                "data_offsets begin at byte {begin}, inside the previous tensor, which ends at {end_of_previous}"
            ));
        }
        if end > data_len {
            return err(format!(
                "data_offsets end at byte {end} but the file holds only {data_len} bytes of tensor data (truncated?)"
            ));
        }
        let elems = info
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        let Some(bits) = elems.and_then(|n| n.checked_mul(info.dtype.bitsize())) else {
            return err(format!(
                "shape {:?} of {:?} overflows",
                info.shape, info.dtype
            ));
        };
        if bits != (end - begin) * 8 {
            return err(format!(
                "shape {:?} of {:?} needs {} bytes but data_offsets [{begin}, {end}] span {}",
                info.shape,
                info.dtype,
                bits.div_ceil(8),
                end - begin
            ));
        }
        end_of_previous = end;
    }
    if end_of_previous != data_len {
        return Some(checkpoint_err(
            file,
            HEADER,
            format!(
                "the header accounts for {end_of_previous} bytes of tensor data but the file holds {data_len} (trailing bytes?)"
            ),
        ));
    }
    None
}

/// The crate's error, in words, when `diagnose` could not be more specific.
fn crate_err(file: &str, e: SafeTensorError) -> Error {
    match e {
        SafeTensorError::InvalidHeader(e) => {
            checkpoint_err(file, HEADER, format!("header is not UTF-8 ({e})"))
        }
        SafeTensorError::InvalidHeaderDeserialization(e) => checkpoint_err(
            file,
            HEADER,
            format!("header is not valid safetensors JSON ({e})"),
        ),
        SafeTensorError::HeaderTooLarge => checkpoint_err(
            file,
            HEADER,
            "header length is over the format's 100 MB limit (not safetensors?)",
        ),
        SafeTensorError::InvalidOffset(name) => {
            checkpoint_err(file, &name, "data_offsets are not contiguous")
        }
        other => checkpoint_err(file, HEADER, other.to_string()),
    }
}

// ---- writing -------------------------------------------------------------------------------------

/// One f32 tensor as the crate's serializer sees it.
struct F32View<'a> {
    shape: &'a [usize],
    data: &'a [f32],
}

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        // safetensors is little-endian; on a little-endian host the f32s are already those bytes.
        if cfg!(target_endian = "little") {
            Cow::Borrowed(bytemuck::cast_slice(self.data))
        } else {
            Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
    }
    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

/// Writes every tensor as F32 to `path`, atomically: the old file, if any, stays intact until
/// the new one is complete on disk.
pub fn save_safetensors(path: &Path, tensors: &TensorMap) -> Result<()> {
    let file = path.display().to_string();
    let mut views = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        // The fields are public, so a caller may have built an inconsistent tensor; a file with
        // such a header would be unreadable.
        let elems = t
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if elems != Some(t.data.len()) {
            return Err(checkpoint_err(
                &file,
                name,
                format!("{} values do not fill shape {:?}", t.data.len(), t.shape),
            ));
        }
        views.push((
            name.as_str(),
            F32View {
                shape: &t.shape,
                data: &t.data,
            },
        ));
    }
    let bytes = ::safetensors::serialize(views, None)
        .map_err(|e| checkpoint_err(&file, HEADER, e.to_string()))?;
    write_atomic(path, &bytes)
}
