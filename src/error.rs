//! The one error type of the library. Variants carry the op, the shapes or the file involved, so a
//! caller never has to guess what went wrong; the programs wrap it with `anyhow` context.

use crate::dtype::DType;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- bad input to an op -------------------------------------------------------------------
    #[error("{op}: shape mismatch: {detail}")]
    Shape { op: &'static str, detail: String },

    #[error("{op}: expected dtype {expected:?} for {arg}, got {got:?}")]
    DType {
        op: &'static str,
        arg: &'static str,
        expected: DType,
        got: DType,
    },

    #[error("{op}: id {id} at position {position} is out of range (must be below {limit})")]
    IdOutOfRange {
        op: &'static str,
        id: u32,
        position: usize,
        limit: usize,
    },

    #[error("{op}: inputs live on different devices ({first} and {second})")]
    DeviceMismatch {
        op: &'static str,
        first: String,
        second: String,
    },

    #[error("{op}: {detail}")]
    InvalidArgument { op: &'static str, detail: String },

    // ---- backends -----------------------------------------------------------------------------
    /// A kernel the device's backend does not implement (the contract's default).
    #[error("{op} is not implemented on device {device}")]
    Unsupported { op: &'static str, device: String },

    #[error("no {wanted} adapter found: {hint}")]
    NoAdapter { wanted: &'static str, hint: String },

    #[cfg_attr(
        not(feature = "cuda"),
        error("unknown device '{0}': expected one of auto, cpu, gpu, lavapipe")
    )]
    #[cfg_attr(
        feature = "cuda",
        error("unknown device '{0}': expected one of auto, cpu, gpu, lavapipe, cuda, cuda:N")
    )]
    UnknownDevice(String),

    #[error("{op}: a binding of {bytes} bytes exceeds this adapter's limit of {limit} bytes")]
    BindingTooLarge {
        op: &'static str,
        bytes: u64,
        limit: u64,
    },

    #[error("wgpu: {0}")]
    Gpu(String),

    /// A CUDA driver, NVRTC or cuBLAS call that failed (the `cuda` feature's backend).
    #[cfg(feature = "cuda")]
    #[error("cuda: {0}")]
    Cuda(String),

    /// A run whose sizes overflow the arithmetic or need more memory than the device has, found
    /// before anything is allocated (see `train::run_size`).
    #[error("{field}: {detail}")]
    TooLarge { field: String, detail: String },

    // ---- files: checkpoints, configs, data --------------------------------------------------
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    /// A checkpoint that cannot be used: malformed, truncated, or not matching the model.
    #[error("{file}: tensor '{tensor}': {detail}")]
    Checkpoint {
        file: String,
        tensor: String,
        detail: String,
    },

    /// A config file with a bad, missing or unknown key.
    #[error("{file}: field '{field}': {detail}")]
    Config {
        file: String,
        field: String,
        detail: String,
    },

    /// A tokenizer file that cannot be loaded, or text/ids its tokenizer cannot handle.
    #[error("{file}: {detail}")]
    Tokenizer { file: String, detail: String },

    /// Training data that cannot be used: a bad corpus line (`line` is 1-based), text that is
    /// not UTF-8, an empty corpus, or a token shard whose header or contents do not check out.
    #[error("{file}{}: {detail}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Data {
        file: String,
        line: Option<usize>,
        detail: String,
    },

    // ---- autograd -----------------------------------------------------------------------------
    #[error("backward: {0}")]
    Autograd(String),

    // ---- training -----------------------------------------------------------------------------
    /// `skips` steps in a row had a non-finite loss or gradient, so the run stopped: going on
    /// would only burn time. `last_reason` is the last skipped step's reason.
    #[error(
        "training diverged: {skips} steps in a row had a non-finite loss or gradient \
         (last at step {step}: {last_reason}); lower training.lr or check the data"
    )]
    Diverged {
        skips: usize,
        step: usize,
        last_reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for the most common error: an op's inputs have shapes that do not fit together.
pub(crate) fn shape_err<T>(op: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(Error::Shape {
        op,
        detail: detail.into(),
    })
}
