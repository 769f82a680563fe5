//! Text generation on the host side of a model: sampling the next token from logits, and the
//! loop that prefills a prompt, steps the model and stops at EOS, a stop string or a budget.
//! The model is behind the `NextToken` trait, so this module needs no device.

pub mod autonomy;
mod decode;
pub mod deliberate;
mod sampling;
mod session;

pub use decode::{GenerateOptions, NextToken, generate};
pub use sampling::{Sampler, SamplingConfig, argmax};
pub use session::Session;
