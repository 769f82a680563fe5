//! crsm: Continuous Reasoning State Models. A Mamba language model whose recurrent state a latent
//! planner steers while it generates. This crate is the engine: devices, tensors, the tape, and
//! the ops the model is built from. See `docs/ARCHITECTURE.md`.

pub mod autograd;
pub mod backend;
pub mod data;
pub mod dtype;
pub mod error;
pub mod generate;
pub mod grad_mode;
pub mod io;
pub mod latent;
pub mod model;
pub mod nn;
pub mod ops;
pub mod planner;
pub mod rng;
pub mod scoped_flag;
pub mod state;
pub mod tasks;
pub mod tensor;
pub mod trace;
pub mod train;

pub use autograd::{Gradients, checkpoint, no_grad};
pub use backend::{Device, DeviceRequest, MemoryStats};
pub use error::{Error, Result};
pub use tensor::{DType, Tensor};
