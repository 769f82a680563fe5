//! Layers built from ops. Parameters are tensors marked as variables; each layer is a plain
//! struct of them with a `forward`.

mod mamba_block;

pub use mamba_block::{BlockOutput, MambaBlock, MambaDims};
