//! A stage task's weights file: its named parameters plus the fixed f32 tensors that read them
//! (a standardiser, a target's mean and spread), one safetensors file in the checkpoint folder.
//! Loading takes each tensor by name and checks its shape, naming the file and the tensor
//! (`io::WeightsFile`, which the assembled checkpoint reads with too).

use std::path::Path;

use crate::error::Result;
use crate::io::{HostTensor, TensorMap, save_safetensors};
use crate::tensor::Tensor;

pub use crate::io::WeightsFile as TaskWeights;

/// Writes `params` and `extra` (name, shape, values) to `path`.
pub fn save_task_weights(
    path: &Path,
    params: Vec<(String, &Tensor)>,
    extra: Vec<(&str, Vec<usize>, Vec<f32>)>,
) -> Result<()> {
    let mut map = TensorMap::new();
    for (name, t) in params {
        map.insert(name, HostTensor::from_tensor(t)?);
    }
    for (name, shape, values) in extra {
        map.insert(name.to_string(), HostTensor::new(shape, values)?);
    }
    save_safetensors(path, &map)
}

/// Names and shapes of a task's parameters, owned (so the task can be borrowed mutably after).
pub fn names_and_shapes(params: &[(String, &Tensor)]) -> Vec<(String, Vec<usize>)> {
    params
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect()
}
