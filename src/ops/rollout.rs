//! The planner's rollout ops: `top_k` (and `topk_log_softmax`, the priors of an expansion),
//! `sample_logits` (Gumbel-max over the counter-based stream of `rng`) and `certainty` (the
//! negative entropy the critic reads). Forward only: they run at inference, in the planner's
//! rollouts, and never record on the tape (calling them while it records is fine; their outputs
//! carry no gradient). logits: [B, V] f32.
//!
//! Orders are total and the same on every device: a higher value first, and of equal values the
//! lower index. NaN logits are outside the contract (their rank is unspecified).

use crate::backend::SampleDraw;
use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor};

/// The largest k `top_k` serves: each of a row's 256 invocations keeps its best k in private
/// memory (`shaders/rollout.wgsl`), and the planner's branching stays far below it.
pub const MAX_TOP_K: usize = 64;

/// Checks logits [B, V] (f32, V >= 1); returns (B, V).
fn rows_of(op: &'static str, logits: &Tensor) -> Result<(usize, usize)> {
    logits.expect_dtype(op, "logits", DType::F32)?;
    match *logits.shape() {
        [b, v] if v > 0 => Ok((b, v)),
        _ => shape_err(
            op,
            format!("logits {:?} must be [B, V] with V >= 1", logits.shape()),
        ),
    }
}

fn check_k(op: &'static str, logits: &Tensor, k: usize) -> Result<(usize, usize)> {
    let (b, v) = rows_of(op, logits)?;
    if k == 0 || k > MAX_TOP_K {
        return Err(Error::InvalidArgument {
            op,
            detail: format!("k = {k} must be in 1..={MAX_TOP_K}"),
        });
    }
    if k > v {
        return shape_err(
            op,
            format!(
                "k = {k} exceeds the {v} entries of a row of logits {:?}",
                logits.shape()
            ),
        );
    }
    Ok((b, v))
}

/// logits [B, V] -> (values [B, k] f32, indices [B, k] u32): each row's k largest logits in
/// descending order, ties broken by the lower index. 1 <= k <= min(V, `MAX_TOP_K`).
pub fn top_k(logits: &Tensor, k: usize) -> Result<(Tensor, Tensor)> {
    top_k_impl("top_k", logits, k, false)
}

/// logits [B, V] -> (log_probs [B, k] f32, indices [B, k] u32): the indices of `top_k` and their
/// log-probabilities under the whole row's softmax (x_j - max - ln sum exp(x - max)), in one
/// pass over the row: the planner's priors without a [B, V] log-softmax written and read back.
pub fn topk_log_softmax(logits: &Tensor, k: usize) -> Result<(Tensor, Tensor)> {
    top_k_impl("topk_log_softmax", logits, k, true)
}

fn top_k_impl(
    op: &'static str,
    logits: &Tensor,
    k: usize,
    log_probs: bool,
) -> Result<(Tensor, Tensor)> {
    let (b, v) = check_k(op, logits, k)?;
    let (values, indices) =
        logits
            .device()
            .backend()
            .top_k(logits.storage(), b, v, k, log_probs)?;
    Ok((
        Tensor::from_storage(values, &[b, k], DType::F32),
        Tensor::from_storage(indices, &[b, k], DType::U32),
    ))
}

/// logits [B, n] -> [B] u32: one token per row by the Gumbel-max trick,
///   argmax_j  logits[b, j] * (1 / temperature) + counter_gumbel(seed, stream_base + b, counter * n + j)
/// (`rng::counter_gumbel`; stream and counter wrap mod 2^32), a draw from softmax(logits /
/// temperature) that any device reproduces from (seed, stream, counter). `temperature == 0` is
/// the greedy argmax. Ties go to the lower index. The planner advances `counter` per draw and
/// gives each leaf its own stream.
pub fn sample_logits(
    logits: &Tensor,
    temperature: f32,
    seed: u32,
    stream_base: u32,
    counter: u32,
) -> Result<Tensor> {
    const OP: &str = "sample_logits";
    let (b, n) = rows_of(OP, logits)?;
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: format!("temperature {temperature} must be finite and >= 0"),
        });
    }
    let draw = SampleDraw {
        temperature,
        seed,
        stream_base,
        counter,
    };
    let ids = logits
        .device()
        .backend()
        .sample_logits(logits.storage(), b, n, draw)?;
    Ok(Tensor::from_storage(ids, &[b], DType::U32))
}

/// logits [B, V] -> [B]: the negative entropy sum_j p_j ln p_j of softmax(row), in nats (0 for a
/// one-hot row, -ln V for a uniform one), max-subtracted so large logits never overflow. The
/// critic's certainty feature (`latent::critic::certainty` computes it from log-probabilities on
/// the host). A row needs at least one finite logit.
pub fn certainty(logits: &Tensor) -> Result<Tensor> {
    const OP: &str = "certainty";
    let (b, v) = rows_of(OP, logits)?;
    let out = logits
        .device()
        .backend()
        .certainty(logits.storage(), b, v)?;
    Ok(Tensor::from_storage(out, &[b], DType::F32))
}
