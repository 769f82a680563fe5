//! Gated per-layer injection: the plan's state delta blended into the SSM states,
//!
//! ```text
//! target_i = h_i + delta_i;   h_i <- (1 - a_i) h_i + a_i target_i
//! ```
//!
//! with a_i from the gates (`latent::gates`). The delta is computed when the plan is applied,
//! from the state as it is then (`Broadcaster::propose`), so a plan made from an older snapshot
//! still proposes a change relative to where the state has gone. A layer whose alpha is below
//! `floor` is left untouched, bit for bit.

use crate::error::{Result, shape_err};
use crate::state::State;
use crate::tensor::Tensor;

/// What an injection did, per layer: alpha (0 where skipped) and the SSM state's norm before
/// and after.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Injected {
    pub alphas: Vec<f32>,
    pub norm_before: Vec<f32>,
    pub norm_after: Vec<f32>,
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt() as f32
}

/// Blends `targets` ([layers] rows of E * N values, batch row 0 of a one-row state) into
/// `state`'s SSM states with per-layer `alphas`.
pub fn inject(
    state: &mut State,
    targets: &[Vec<f32>],
    alphas: &[f32],
    floor: f32,
) -> Result<Injected> {
    if state.batch() != 1 || targets.len() != state.layers.len() || alphas.len() != targets.len() {
        return shape_err(
            "inject",
            format!(
                "a one-row state of {} layers, {} targets and {} alphas",
                state.layers.len(),
                targets.len(),
                alphas.len()
            ),
        );
    }
    let mut out = Injected::default();
    for ((layer, target), &a) in state.layers.iter_mut().zip(targets).zip(alphas) {
        let h = layer.ssm.to_vec_f32()?;
        if target.len() != h.len() {
            return shape_err(
                "inject",
                format!(
                    "a target of {} values for a state of {}",
                    target.len(),
                    h.len()
                ),
            );
        }
        out.norm_before.push(norm(&h));
        if !(a >= floor && a > 0.0) {
            out.alphas.push(0.0);
            out.norm_after.push(norm(&h));
            continue;
        }
        let blended: Vec<f32> = h
            .iter()
            .zip(target)
            .map(|(x, t)| (1.0 - a) * x + a * t)
            .collect();
        out.alphas.push(a);
        out.norm_after.push(norm(&blended));
        layer.ssm = Tensor::from_f32(blended, layer.ssm.shape(), &layer.ssm.device())?;
    }
    Ok(out)
}
