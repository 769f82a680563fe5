//! The backbone's own (fused) head as a `PolicyHead`, so the fit report can say how well the
//! policy survives at predicted latents: the planner expands nodes from exactly such latents.

use super::fit::PolicyHead;
use crate::autograd::no_grad;
use crate::error::Result;
use crate::model::Backbone;
use crate::ops;
use crate::tensor::Tensor;

pub struct BackboneHead<'a>(pub &'a Backbone);

impl PolicyHead for BackboneHead<'_> {
    fn log_probs(&self, raw: &[f32], rows: usize) -> Result<Vec<f32>> {
        let _off = no_grad();
        let model = self.0;
        let (layers, d) = (model.config.applications(), model.config.hidden_size);
        let device = model.device();
        let all = Tensor::from_f32(raw.to_vec(), &[rows, layers, d], &device)?;
        let per_layer = (0..layers)
            .map(|i| ops::narrow(&all, 1, i, 1)?.reshape(&[rows, d]))
            .collect::<Result<Vec<_>>>()?;
        ops::log_softmax(&model.head(per_layer)?)?.to_vec_f32()
    }
}
