//! Element types. Its own file so the error type can name dtypes without depending on tensors.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    /// Token ids and targets.
    U32,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        4
    }
}
