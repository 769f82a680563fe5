//! Element types. Its own file so the error type can name dtypes without depending on tensors.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    /// Token ids and targets.
    U32,
    /// bfloat16 weights for inference (`ops::to_bf16`): stored in 2 bytes, computed in f32.
    BF16,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::BF16 => 2,
        }
    }
}
