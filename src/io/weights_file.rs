//! A safetensors file opened for taking its tensors out by name: each take checks the shape and
//! names the file and the tensor; `finish` makes loading strict (a tensor nobody took is an
//! error). Shared by the stage tasks' weights files (`train::task_weights`) and the assembled
//! CRSM checkpoint (`latent::checkpoint`), so both read tensors one way.

use std::path::Path;

use crate::backend::Device;
use crate::error::{Error, Result};
use crate::io::{TensorMap, load_safetensors_file};
use crate::tensor::Tensor;

pub struct WeightsFile {
    map: TensorMap,
    file: String,
}

impl WeightsFile {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(WeightsFile {
            map: load_safetensors_file(path)?,
            file: path.display().to_string(),
        })
    }

    /// The file's name, as errors give it.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn err(&self, tensor: &str, detail: String) -> Error {
        Error::Checkpoint {
            file: self.file.clone(),
            tensor: tensor.into(),
            detail,
        }
    }

    /// The shape of tensor `name`, if the file still holds it (for a part whose sizes are read
    /// off its tensors).
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.map.get(name).map(|t| t.shape.as_slice())
    }

    /// The values of tensor `name`, which must have shape `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .map
            .remove(name)
            .ok_or_else(|| self.err(name, format!("missing (expected shape {shape:?})")))?;
        if t.shape != shape {
            return Err(self.err(name, format!("shape {:?}, expected {shape:?}", t.shape)));
        }
        Ok(t.data)
    }

    /// Every tensor whose name starts with `prefix`, whatever its shape (for a part whose shapes
    /// the reader does not know).
    pub fn take_prefixed(&mut self, prefix: &str) -> TensorMap {
        let names: Vec<String> = self
            .map
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect();
        names
            .into_iter()
            .filter_map(|n| self.map.remove(&n).map(|t| (n, t)))
            .collect()
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

    /// Errors, naming one of them, when tensors are left that nobody took; `hint` says what
    /// decided which tensors belong.
    pub fn finish(self, hint: &str) -> Result<()> {
        match self.map.iter().next() {
            None => Ok(()),
            Some((name, t)) => Err(self.err(
                name,
                format!(
                    "unexpected tensor of shape {:?} ({} other unexpected tensors): {hint}",
                    t.shape,
                    self.map.len() - 1
                ),
            )),
        }
    }
}
