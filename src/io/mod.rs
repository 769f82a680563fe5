//! Checkpoint files: safetensors read and write, the format HF transformers and mamba-ssm publish
//! Mamba weights in. Everything here is host memory (`HostTensor`: a shape and f32 values); the
//! model moves tensors to a device itself with `HostTensor::to_tensor`. Not here: which tensor
//! names a model expects (that is `crate::model`), and config files.
//!
//! Reading accepts F32, F16 and BF16 and widens them to f32; I32/I64 load only when every value is
//! exactly an f32 (|v| <= 2^24), so a stored id tensor survives unchanged. Writing is always F32,
//! atomically (`write_atomic`), so a crash mid-save never leaves a half checkpoint behind.

mod atomic;
pub mod fault;
mod safetensors;
mod shards;
pub mod steps;
mod weights_file;

use std::collections::BTreeMap;

use crate::backend::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

pub use self::atomic::{AtomicFile, write_atomic};

/// A whole text file, or `Error::Io` naming it.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A JSON file deserialized into `T`, or an error naming the file (`Error::Io` or `Error::Config`).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    serde_json::from_str(&read_text(path)?).map_err(|e| Error::Config {
        file: path.display().to_string(),
        field: String::new(),
        detail: e.to_string(),
    })
}

/// The top-level JSON object of a config text, or an error naming `file`: not JSON at all, or a
/// JSON value that is not an object (`expected` says what the object should hold).
pub fn json_object(
    text: &str,
    file: &str,
    expected: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let err = |detail: String| Error::Config {
        file: file.to_string(),
        field: String::new(),
        detail,
    };
    match serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(err(format!("must be a JSON object{expected}"))),
    }
}

pub use self::safetensors::{load_safetensors_file, save_safetensors};
pub use self::shards::load_safetensors_dir;
pub use self::weights_file::WeightsFile;

/// A tensor in host memory, as read from or written to a checkpoint. Row-major, like `Tensor`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Tensors by name, in name order (so a saved file is byte-for-byte reproducible).
pub type TensorMap = BTreeMap<String, HostTensor>;

impl HostTensor {
    /// Checks that `data` fills `shape` exactly.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if n != Some(data.len()) {
            return Err(Error::Shape {
                op: "HostTensor::new",
                detail: format!("{} values do not fill shape {shape:?}", data.len()),
            });
        }
        Ok(Self { shape, data })
    }

    /// Reads a f32 tensor back from any device (for saving).
    pub fn from_tensor(tensor: &Tensor) -> Result<Self> {
        Self::new(tensor.shape().to_vec(), tensor.to_vec_f32()?)
    }

    /// Uploads a copy to `device` as an f32 tensor.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Tensor::from_f32(self.data.clone(), &self.shape, device)
    }

    pub fn elem_count(&self) -> usize {
        self.data.len()
    }
}
