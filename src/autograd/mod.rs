//! The backward pass. Every op that runs while recording attaches a `Node` (`tensor.rs`) to its
//! output: the inputs and a closure from the output's gradient to the inputs' gradients (written
//! beside the op's forward, as in burn and micrograd). `backward` walks the graph in reverse
//! topological order and accumulates with `+=` (`ops::add_assign`), so a tensor used twice gets
//! both contributions. The switch that turns recording on and off is `grad_mode`, below `ops`.
//!
//! Backward itself runs with recording off: there are no second derivatives.

mod checkpoint;

pub use checkpoint::checkpoint;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::{Tensor, TensorId};

pub(crate) use crate::grad_mode::enable_grad;
pub use crate::grad_mode::{NoGradGuard, is_grad_enabled, no_grad};

// ---- gradients -----------------------------------------------------------------------------------

/// The gradients of the variables (leaves marked with `as_variable`) a loss depends on.
#[derive(Default)]
pub struct Gradients(HashMap<TensorId, Tensor>);

impl Gradients {
    pub fn get(&self, variable: &Tensor) -> Option<&Tensor> {
        self.0.get(&variable.id())
    }
    pub fn remove(&mut self, variable: &Tensor) -> Option<Tensor> {
        self.0.remove(&variable.id())
    }
    /// Sets the gradient of `variable` (e.g. a sum over micro-batches).
    pub fn insert(&mut self, variable: &Tensor, grad: Tensor) {
        self.0.insert(variable.id(), grad);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Tensor {
    /// Gradients of this scalar with respect to every variable it depends on.
    pub fn backward(&self) -> Result<Gradients> {
        if self.elem_count() != 1 {
            return Err(Error::Autograd(format!(
                "backward() needs a one-element loss, got shape {:?}; use backward_with(seed)",
                self.shape()
            )));
        }
        let seed = Tensor::full(1.0, self.shape(), &self.device())?;
        self.backward_with(&seed)
    }

    /// Backpropagates `seed` (the gradient of some scalar with respect to this tensor).
    pub fn backward_with(&self, seed: &Tensor) -> Result<Gradients> {
        if seed.shape() != self.shape() {
            return Err(Error::Autograd(format!(
                "seed shape {:?} != output shape {:?}",
                seed.shape(),
                self.shape()
            )));
        }
        backward_many(&[(self, seed)])
    }
}

/// Backpropagates several outputs at once, each with its seed: the gradients of the sum of
/// their scalars (a checkpointed segment's outputs in its recompute).
pub(crate) fn backward_many(seeds: &[(&Tensor, &Tensor)]) -> Result<Gradients> {
    let _off = no_grad();
    // Step 1: topological order of everything that needs a gradient.
    let roots: Vec<&Tensor> = seeds.iter().map(|(t, _)| *t).collect();
    let order = topological_order(&roots);
    // Step 2: the chain rule, outputs before inputs.
    let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
    for (t, seed) in seeds {
        let total = match grads.remove(&t.id()) {
            Some(previous) => ops::add(&previous, seed)?,
            None => (*seed).clone(),
        };
        grads.insert(t.id(), total);
    }
    let mut leaves = Gradients::default();
    for t in order.iter().rev() {
        let Some(grad) = grads.remove(&t.id()) else {
            continue;
        };
        let Some(node) = t.node() else {
            if t.is_variable() {
                leaves.0.insert(t.id(), grad);
            }
            continue;
        };
        let input_grads = (node.backward)(&grad)?;
        if input_grads.len() != node.inputs.len() {
            return Err(Error::Autograd(format!(
                "{} returned {} gradients for {} inputs",
                node.op,
                input_grads.len(),
                node.inputs.len()
            )));
        }
        for (input, g) in node.inputs.iter().zip(input_grads) {
            let Some(g) = g else { continue };
            if !input.requires_grad() {
                continue;
            }
            if g.shape() != input.shape() {
                return Err(Error::Autograd(format!(
                    "{} produced a gradient of shape {:?} for an input of shape {:?}",
                    node.op,
                    g.shape(),
                    input.shape()
                )));
            }
            let total = match grads.remove(&input.id()) {
                Some(previous) => accumulate(previous, &g)?,
                None => g,
            };
            grads.insert(input.id(), total);
        }
    }
    Ok(leaves)
}

/// previous + g (one shape), in place where `previous` is a sum this pass alone holds.
fn accumulate(mut previous: Tensor, g: &Tensor) -> Result<Tensor> {
    ops::add_assign(&mut previous, g)?;
    Ok(previous)
}

/// Depth-first post-order over nodes that need a gradient; iterative, so deep recurrent graphs do
/// not overflow the stack.
fn topological_order(roots: &[&Tensor]) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<(Tensor, bool)> =
        roots.iter().rev().map(|r| ((*r).clone(), false)).collect();
    while let Some((t, children_done)) = stack.pop() {
        if children_done {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for input in &node.inputs {
                if input.requires_grad() && !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use crate::backend::Device;
    use crate::ops;
    use crate::tensor::Tensor;

    /// Gradient sums are added in place only into tensors nobody else holds: a gradient shared
    /// between two inputs (add's backward hands the same tensor to both) and the caller's seed
    /// keep their values.
    #[test]
    fn gradient_sums_never_change_a_tensor_someone_else_holds() {
        let dev = Device::Cpu;
        let x = Tensor::from_f32(vec![1.0, 2.0, 3.0], &[3], &dev)
            .unwrap()
            .as_variable();
        let seed = Tensor::from_f32(vec![1.0, 10.0, 100.0], &[3], &dev).unwrap();
        // x reaches y three times: twice through the same add, once through scale.
        let y = ops::add(&ops::add(&x, &x).unwrap(), &ops::scale(&x, 3.0).unwrap()).unwrap();
        let g = y.backward_with(&seed).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec_f32().unwrap(), [5.0, 50.0, 500.0]);
        assert_eq!(seed.to_vec_f32().unwrap(), [1.0, 10.0, 100.0]);
    }
}
