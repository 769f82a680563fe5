//! A stage task's weights file: its named parameters plus the fixed f32 tensors that read them
//! (a standardiser, a target's mean and spread), one safetensors file in the checkpoint folder.
//! Loading takes each tensor by name and checks its shape, naming the file and the tensor.

use std::path::Path;

use crate::Device;
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap, load_safetensors_file, save_safetensors};
use crate::tensor::Tensor;

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

/// A weights file opened for taking its tensors out.
pub struct TaskWeights {
    map: TensorMap,
    file: String,
}

impl TaskWeights {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(TaskWeights {
            map: load_safetensors_file(path)?,
            file: path.display().to_string(),
        })
    }

    /// The values of tensor `name`, which must have shape `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.map.remove(name).ok_or_else(|| Error::Checkpoint {
            file: self.file.clone(),
            tensor: name.into(),
            detail: "missing".into(),
        })?;
        if t.shape != shape {
            return Err(Error::Checkpoint {
                file: self.file.clone(),
                tensor: name.into(),
                detail: format!("shape {:?}, expected {shape:?}", t.shape),
            });
        }
        Ok(t.data)
    }

    /// Replaces each of `params` (as `named` names and shapes them, in the same order) with the
    /// stored tensor of its name, as a variable on `device`. Nothing is replaced unless every
    /// tensor is there with its shape.
    pub fn take_parameters(
        &mut self,
        named: &[(String, Vec<usize>)],
        params: Vec<&mut Tensor>,
        device: &Device,
    ) -> Result<()> {
        let mut values = Vec::with_capacity(named.len());
        for (name, shape) in named {
            values.push(Tensor::from_f32(self.take(name, shape)?, shape, device)?);
        }
        for (p, v) in params.into_iter().zip(values) {
            *p = v.as_variable();
        }
        Ok(())
    }
}

/// Names and shapes of a task's parameters, owned (so the task can be borrowed mutably after).
pub fn names_and_shapes(params: &[(String, &Tensor)]) -> Vec<(String, Vec<usize>)> {
    params
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect()
}
