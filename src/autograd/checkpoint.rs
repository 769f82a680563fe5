//! Gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"): a
//! segment of the graph runs without recording, so the tape keeps only its inputs and outputs;
//! backward runs the segment again with recording on and back-propagates through that copy.
//! Memory falls from every activation of the segment to its boundaries, for one more forward.
//!
//! The segment is one tape node with several outputs. Each output is tied to a one-element "hub"
//! tensor whose node holds the segment's inputs and parameters: an output's backward only stores
//! its incoming gradient (and sends a dummy gradient to the hub); the hub comes after every
//! output in reverse topological order, so when its backward runs it has them all, re-runs the
//! segment and returns the gradients of the inputs and parameters to the outer tape.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{backward_many, enable_grad, is_grad_enabled, no_grad};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

type Slots = Arc<Mutex<Vec<Option<Tensor>>>>;

/// Runs `f(inputs)` without keeping its activations; see the module doc. `params` are the
/// variables `f` reads (the weights it closes over): they become the node's inputs so their
/// gradients reach the outer `Gradients`. `f` must be deterministic (it runs twice). A variable
/// that `f` reads but `params` does not list is an error at backward time, not a lost gradient.
pub fn checkpoint(
    inputs: &[&Tensor],
    params: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync + 'static,
) -> Result<Vec<Tensor>> {
    let owned: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    let needs_grad = inputs.iter().chain(params).any(|t| t.requires_grad());
    if !is_grad_enabled() || !needs_grad {
        return f(&owned);
    }
    let Some(first) = inputs.first() else {
        return Err(Error::Autograd(
            "checkpoint needs at least one input tensor".into(),
        ));
    };
    if let Some(p) = params.iter().find(|p| !p.is_variable()) {
        // A computed tensor would lead the inner backward into the outer graph.
        return Err(Error::Autograd(format!(
            "checkpoint params must be variables (leaves); got a computed tensor of shape {:?}",
            p.shape()
        )));
    }
    let outputs = {
        let _off = no_grad();
        f(&owned)?
    };
    let slots: Slots = Arc::new(Mutex::new(vec![None; outputs.len()]));
    let declared: Vec<Tensor> = params.iter().map(|t| (*t).clone()).collect();
    let node_inputs: Vec<&Tensor> = inputs.iter().chain(params).copied().collect();
    let hub_slots = slots.clone();
    let hub = Tensor::full(0.0, &[1], &first.device())?.with_grad_fn(
        "checkpoint",
        &node_inputs,
        move |_dummy| {
            let grads = std::mem::take(&mut *lock(&hub_slots));
            recompute_backward(&f, &owned, &declared, grads)
        },
    );
    Ok(outputs
        .into_iter()
        .enumerate()
        .map(|(i, out)| {
            let slots = slots.clone();
            out.with_grad_fn("checkpoint_output", &[&hub], move |g| {
                lock(&slots)[i] = Some(g.clone());
                Ok(vec![Some(Tensor::full(0.0, &[1], &g.device())?)])
            })
        })
        .collect())
}

/// The hub's backward: runs `f` again, recording, on variable copies of the inputs, seeds each
/// output with its stored gradient and returns the gradients of the inputs, then of the params.
fn recompute_backward(
    f: &(impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + ?Sized),
    inputs: &[Tensor],
    params: &[Tensor],
    output_grads: Vec<Option<Tensor>>,
) -> Result<Vec<Option<Tensor>>> {
    let xs: Vec<Tensor> = inputs.iter().map(|t| t.detach().as_variable()).collect();
    let outs = {
        let _on = enable_grad();
        f(&xs)?
    };
    if outs.len() != output_grads.len() {
        return Err(Error::Autograd(format!(
            "checkpoint: the segment returned {} outputs on recompute, {} the first time",
            outs.len(),
            output_grads.len()
        )));
    }
    let seeds: Vec<(&Tensor, &Tensor)> = outs
        .iter()
        .zip(&output_grads)
        .filter_map(|(o, g)| Some((o, g.as_ref()?)))
        .filter(|(o, _)| o.requires_grad())
        .collect();
    let mut leaves = backward_many(&seeds)?;
    let mut result: Vec<Option<Tensor>> = xs.iter().map(|x| leaves.remove(x)).collect();
    result.extend(params.iter().map(|p| leaves.remove(p)));
    if !leaves.is_empty() {
        return Err(Error::Autograd(format!(
            "checkpoint: the segment read {} variable(s) not listed in its params",
            leaves.len()
        )));
    }
    Ok(result)
}

fn lock(slots: &Slots) -> MutexGuard<'_, Vec<Option<Tensor>>> {
    slots.lock().unwrap_or_else(|p| p.into_inner())
}
