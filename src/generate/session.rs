//! One sequence running on a `Backbone`: the weights plus that sequence's recurrent state, as the
//! `NextToken` the generation loop drives (prefill the prompt once, then O(1) steps).

use crate::autograd::no_grad;
use crate::error::{Error, Result};
use crate::generate::NextToken;
use crate::model::Backbone;
use crate::state::State;
use crate::tensor::Tensor;

pub struct Session<'a> {
    backbone: &'a Backbone,
    state: State,
}

impl<'a> Session<'a> {
    pub fn new(backbone: &'a Backbone) -> Result<Self> {
        Ok(Session {
            backbone,
            state: backbone.new_state(1)?,
        })
    }

    pub fn state(&self) -> &State {
        &self.state
    }
}

impl NextToken for Session<'_> {
    fn prefill(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        if prompt.is_empty() {
            return Err(Error::InvalidArgument {
                op: "Session::prefill",
                detail: "the prompt is empty".into(),
            });
        }
        let _off = no_grad();
        let ids = Tensor::from_u32(prompt.to_vec(), &[1, prompt.len()], &self.backbone.device())?;
        self.backbone
            .prefill_last(&ids, &mut self.state)?
            .to_vec_f32()
    }

    fn step(&mut self, id: u32) -> Result<Vec<f32>> {
        let _off = no_grad();
        let ids = Tensor::from_u32(vec![id], &[1], &self.backbone.device())?;
        self.backbone.step(&ids, &mut self.state)?.to_vec_f32()
    }
}
