//! Layers built from ops. Parameters are tensors marked as variables; each layer is a plain
//! struct of them with a `forward`.

mod init;
mod mamba_block;

pub use init::Rng;
pub use mamba_block::{BlockOutput, MambaBlock, MambaDims};
