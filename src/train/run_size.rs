//! What a training run needs before anything is allocated: its parameters, AdamW's two moments
//! and a lower bound on one step's activations, counted from the config's sizes with
//! overflow-checked arithmetic (a plain product wraps in release builds and would let a huge
//! config through to an allocation that aborts the process). `check_fits` refuses a run that
//! cannot fit the device, naming the field that makes it large and the bytes; `memtest` then
//! counts the exact step on the meta device.
//!
//! Not an exact count (that is `memtest`'s): the activations are a lower bound (the logits, their
//! gradient and the block inputs kept by the tape), so a refusal here is certain.

use crate::error::{Error, Result};
use crate::model::CrsmConfig;

/// Bytes of f32.
const F32: u64 = 4;

/// The fields that set the parameter count, as errors name them.
const PARAMETER_FIELDS: &str =
    "model.vocab_size x model.hidden_size x model.num_hidden_layers (parameters)";

/// The bytes a run needs, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSize {
    pub parameters: u64,
    /// AdamW's m and v.
    pub optimizer_state: u64,
    /// At least this much for one step's activations and gradients.
    pub activations: u64,
    /// The logits and their gradient, the part of `activations` that grows with the vocabulary.
    pub logits: u64,
}

impl RunSize {
    pub fn total(&self) -> u64 {
        // Each part is below u64::MAX / 4 (checked when counted), so the sum cannot wrap.
        self.parameters + self.optimizer_state + self.activations
    }
}

/// a * b, or an error naming `field` when the product overflows.
fn mul(a: u64, b: u64, field: &str) -> Result<u64> {
    a.checked_mul(b).ok_or_else(|| too_large(field, a, b))
}

fn add(a: u64, b: u64, field: &str) -> Result<u64> {
    a.checked_add(b).ok_or_else(|| too_large(field, a, b))
}

fn too_large(field: &str, a: u64, b: u64) -> Error {
    Error::TooLarge {
        field: field.to_string(),
        detail: format!("{a} x {b} overflows a 64-bit byte count; no machine holds this run"),
    }
}

/// Counts a run of `model` at `batch` sequences of `seq` tokens, every step checked.
pub fn run_size(model: &CrsmConfig, batch: usize, seq: usize) -> Result<RunSize> {
    let u = |x: usize| x as u64;
    let (v, d) = (u(model.vocab_size), u(model.hidden_size));
    let (e, n, r, k) = (
        u(model.d_inner()),
        u(model.state_size),
        u(model.dt_rank()),
        u(model.conv_kernel),
    );
    let layers = u(model.num_hidden_layers);
    let depth = u(model.crsm_recurrent_depth);

    // ---- parameters (as `Backbone::init` makes them) ----
    let embedding = mul(v, d, "model.vocab_size x model.hidden_size")?;
    let tables = if model.tie_word_embeddings {
        embedding
    } else {
        mul(embedding, 2, "model.vocab_size x model.hidden_size")?
    };
    let f = "model.hidden_size";
    let in_out = mul(mul(e, d, f)?, 3, f)?; // in_proj [2E, D], out_proj [D, E]
    let x_proj = mul(add(r, mul(n, 2, "model.state_size")?, f)?, e, f)?;
    // Per channel: conv weight (K), dt_proj (r), A_log (N), dt bias and D, and the optional
    // conv bias; per model channel: the norm; with use_bias, in_proj's and out_proj's biases.
    let per_channel = add(
        add(k, r, f)?,
        add(n, 2 + u(model.use_conv_bias as usize), f)?,
        f,
    )?;
    let biases = if model.use_bias {
        add(mul(e, 2, f)?, d, f)?
    } else {
        0
    };
    let small = add(mul(e, per_channel, f)?, add(d, biases, f)?, f)?;
    let block = add(add(in_out, x_proj, f)?, small, f)?;
    let applications = mul(
        layers,
        depth,
        "model.num_hidden_layers x model.crsm_recurrent_depth",
    )?;
    let blocks = mul(block, layers, "model.num_hidden_layers")?;
    let fusion = if model.crsm_fusion { applications } else { 0 };
    let adapters = if model.depth_adapters() {
        mul(depth, mul(d, 2, f)?, "model.crsm_recurrent_depth")?
    } else {
        0
    };
    let count = add(
        add(tables, blocks, f)?,
        add(add(fusion, adapters, f)?, d, f)?,
        f,
    )?;
    let parameters = mul(count, F32, PARAMETER_FIELDS)?;
    let optimizer_state = mul(parameters, 2, PARAMETER_FIELDS)?;

    // ---- one step's activations (a lower bound) ----
    let tokens = mul(u(batch), u(seq), "training.batch_size x training.seq_len")?;
    let logits = mul(
        mul(
            tokens,
            v,
            "training.batch_size x training.seq_len x model.vocab_size",
        )?,
        2 * F32,
        "model.vocab_size",
    )?;
    let per_token = mul(add(mul(e, 4, f)?, d, f)?, F32, f)?; // in_proj's 2E, conv, y, and x
    let tape = mul(
        mul(tokens, per_token, "training.batch_size x training.seq_len")?,
        applications,
        "model.num_hidden_layers x model.crsm_recurrent_depth",
    )?;
    let activations = add(logits, tape, "activations")?;
    // Keep the parts small enough that their sum is exact.
    for (part, bytes) in [
        ("model parameters", parameters),
        ("AdamW moments", optimizer_state),
        ("activations", activations),
    ] {
        if bytes > u64::MAX / 4 {
            return Err(too_large(part, bytes, 1));
        }
    }
    Ok(RunSize {
        parameters,
        optimizer_state,
        activations,
        logits,
    })
}

/// Refuses a run needing more than `available` bytes, naming the part that dominates and the
/// fields that set it.
pub fn check_fits(size: &RunSize, available: u64, device: &str) -> Result<()> {
    if size.total() <= available {
        return Ok(());
    }
    let field = if size.logits > size.parameters * 3 && size.logits * 2 > size.activations {
        "training.batch_size x training.seq_len x model.vocab_size (logits)"
    } else if size.activations > size.parameters * 3 {
        "training.batch_size x training.seq_len x model.num_hidden_layers x \
         model.crsm_recurrent_depth (activations)"
    } else {
        PARAMETER_FIELDS
    };
    Err(Error::TooLarge {
        field: field.to_string(),
        detail: format!(
            "the run needs at least {} bytes ({} of parameters, {} of AdamW moments, {} of \
             activations) but {device} has {available} bytes",
            size.total(),
            size.parameters,
            size.optimizer_state,
            size.activations
        ),
    })
}

/// The machine's physical memory (MemTotal of /proc/meminfo), where the OS says.
pub fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_parameters_of_a_small_model_exactly() {
        // The model of tests/memtest.rs's count by hand: v 4096, d 8, E 16, N 2, K 4, r 1.
        let mut c = CrsmConfig::new(4096, 8, 1);
        c.state_size = 2;
        c.expand = 2;
        c.conv_kernel = 4;
        let (v, d, e, n, k, r) = (4096u64, 8, 16, 2, 4, 1);
        let block = d + 2 * e * d + e * k + e + (r + 2 * n) * e + e * r + e + e * n + e + d * e;
        let s = run_size(&c, 1, 2).unwrap();
        assert_eq!(s.parameters, 4 * (v * d + block + d));
        assert_eq!(s.optimizer_state, 2 * s.parameters);
    }

    #[test]
    fn overflow_names_the_field() {
        let c = CrsmConfig::new(1 << 40, 1 << 30, 1);
        let e = run_size(&c, 1, 1).unwrap_err().to_string();
        assert!(e.contains("vocab_size"), "{e}");
        let c = CrsmConfig::new(100, 8, 1);
        let e = run_size(&c, usize::MAX, 1000).unwrap_err().to_string();
        assert!(e.contains("batch_size"), "{e}");
    }
}
