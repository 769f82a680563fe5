//! Tensors: a shape, a dtype and immutable storage on one device, plus, when an op recorded it on
//! the tape, the node that made it. Cloning a tensor clones a handle, never the data.
//!
//! Layout is always dense row-major (the last dimension is contiguous); ops that need a transpose
//! take it as a flag (see `ops::matmul`) rather than through strides, which keeps every kernel a
//! plain loop over contiguous memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backend::{Device, Storage};
use crate::error::{Error, Result, shape_err};
use crate::grad_mode;

pub use crate::dtype::DType;

/// The closure of a tape node: the output's gradient to one optional gradient per input.
pub(crate) type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// How a recorded tensor was made: the op, its inputs, and its backward (see `autograd`).
pub(crate) struct Node {
    pub op: &'static str,
    pub inputs: Vec<Tensor>,
    pub backward: BackwardFn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(usize);

impl TensorId {
    fn fresh() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

struct Inner {
    id: TensorId,
    shape: Vec<usize>,
    dtype: DType,
    storage: Arc<Storage>,
    /// The op that produced this tensor, when it was recorded on the tape.
    node: Option<Node>,
    /// A leaf whose gradient `backward` should return (a parameter or an input under test).
    is_variable: bool,
}

#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({:?}, {:?}, {})",
            self.shape(),
            self.dtype(),
            self.device().name()
        )
    }
}

// ---- construction --------------------------------------------------------------------------------

impl Tensor {
    fn new(
        storage: Arc<Storage>,
        shape: Vec<usize>,
        dtype: DType,
        node: Option<Node>,
        is_variable: bool,
    ) -> Self {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            shape,
            dtype,
            storage,
            node,
            is_variable,
        }))
    }

    /// The element count of `shape`, checked: a plain product wraps in release builds, and a
    /// wrapped count would make a small buffer for a huge shape.
    pub fn elements(op: &'static str, shape: &[usize]) -> Result<usize> {
        shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| Error::Shape {
                op,
                detail: format!("shape {shape:?} has more elements than a usize holds"),
            })
    }

    fn check_len(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
        let n = Self::elements(op, shape)?;
        if n != len {
            return shape_err(
                op,
                format!("{len} values do not fill shape {shape:?} ({n} elements)"),
            );
        }
        Ok(())
    }

    pub fn from_f32(data: Vec<f32>, shape: &[usize], device: &Device) -> Result<Self> {
        Self::check_len("from_f32", data.len(), shape)?;
        let storage = device.backend().store_f32(data)?;
        Ok(Self::from_storage(storage, shape, DType::F32))
    }

    pub fn from_u32(data: Vec<u32>, shape: &[usize], device: &Device) -> Result<Self> {
        Self::check_len("from_u32", data.len(), shape)?;
        let storage = device.backend().store_u32(data)?;
        Ok(Self::from_storage(storage, shape, DType::U32))
    }

    pub fn zeros(shape: &[usize], device: &Device) -> Result<Self> {
        let n = Self::elements("zeros", shape)?;
        let storage = device.backend().zeros(n)?;
        Ok(Self::from_storage(storage, shape, DType::F32))
    }

    pub fn full(value: f32, shape: &[usize], device: &Device) -> Result<Self> {
        let n = Self::elements("full", shape)?;
        Self::from_f32(vec![value; n], shape, device)
    }

    /// A parameter (a variable) of `shape`, its values from `fill` (a random init). On the meta
    /// device `fill` is not called: a model too large for the host is still counted, not built.
    pub fn init_variable(
        shape: &[usize],
        device: &Device,
        fill: impl FnOnce() -> Vec<f32>,
    ) -> Result<Self> {
        let t = if device.is_meta() {
            Self::zeros(shape, device)?
        } else {
            Self::from_f32(fill(), shape, device)?
        };
        Ok(t.as_variable())
    }

    /// A kernel's result (storage of `shape`'s element count).
    pub(crate) fn from_storage(storage: Storage, shape: &[usize], dtype: DType) -> Self {
        Self::new(Arc::new(storage), shape.to_vec(), dtype, None, false)
    }

    /// Attaches a tape node to a freshly computed tensor when gradients are being recorded and any
    /// input needs one. `backward` maps the output's gradient to one optional gradient per input.
    /// It must not capture the output tensor itself (that would make a reference cycle).
    pub(crate) fn with_grad_fn(
        self,
        op: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Self {
        if !grad_mode::is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return self;
        }
        let node = Node {
            op,
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            backward: Box::new(backward),
        };
        let inner = &self.0;
        Self::new(
            inner.storage.clone(),
            inner.shape.clone(),
            inner.dtype,
            Some(node),
            false,
        )
    }

    /// The same data as a leaf whose gradient `backward` returns.
    pub fn as_variable(&self) -> Self {
        Self::new(
            self.0.storage.clone(),
            self.0.shape.clone(),
            self.0.dtype,
            None,
            true,
        )
    }

    /// The same data cut from the tape.
    pub fn detach(&self) -> Self {
        Self::new(
            self.0.storage.clone(),
            self.0.shape.clone(),
            self.0.dtype,
            None,
            false,
        )
    }

    /// A view with another shape of the same element count; free (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if Self::elements("reshape", shape)? != self.elem_count() {
            return shape_err(
                "reshape",
                format!("cannot view {:?} as {shape:?}", self.shape()),
            );
        }
        let old = self.shape().to_vec();
        let out = Self::new(
            self.0.storage.clone(),
            shape.to_vec(),
            self.0.dtype,
            None,
            false,
        );
        Ok(out.with_grad_fn("reshape", &[self], move |g| {
            Ok(vec![Some(g.reshape(&old)?)])
        }))
    }

    /// A copy of the data in new storage on the same device, cut from the tape (state snapshots).
    pub fn deep_clone(&self) -> Result<Self> {
        let storage = self.device().backend().duplicate(&self.0.storage)?;
        Ok(Self::new(
            Arc::new(storage),
            self.0.shape.clone(),
            self.0.dtype,
            None,
            false,
        ))
    }

    pub fn to_device(&self, device: &Device) -> Result<Self> {
        match self.dtype() {
            DType::F32 => Self::from_f32(self.to_vec_f32()?, self.shape(), device),
            DType::U32 => Self::from_u32(self.to_vec_u32()?, self.shape(), device),
            DType::BF16 => Err(Error::InvalidArgument {
                op: "to_device",
                detail: "bf16 weights are made on their device (ops::to_bf16), not moved".into(),
            }),
        }
    }
}

// ---- inspection ----------------------------------------------------------------------------------

impl Tensor {
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }
    pub fn dim(&self, i: usize) -> usize {
        self.0.shape[i]
    }
    pub fn elem_count(&self) -> usize {
        self.0.shape.iter().product()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        Device::of(&self.0.storage)
    }
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }
    pub fn is_variable(&self) -> bool {
        self.0.is_variable
    }
    /// True for variables and for anything computed from one while recording.
    pub fn requires_grad(&self) -> bool {
        self.0.is_variable || self.0.node.is_some()
    }

    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        self.expect_dtype("to_vec_f32", "self", DType::F32)?;
        self.device().backend().to_vec_f32(&self.0.storage)
    }

    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        self.expect_dtype("to_vec_u32", "self", DType::U32)?;
        self.device().backend().to_vec_u32(&self.0.storage)
    }

    /// The value of a one-element tensor.
    pub fn scalar(&self) -> Result<f32> {
        if self.elem_count() != 1 {
            return shape_err(
                "scalar",
                format!("expected one element, got shape {:?}", self.shape()),
            );
        }
        Ok(self.to_vec_f32()?[0])
    }
}

// ---- access for kernels --------------------------------------------------------------------------

impl Tensor {
    pub(crate) fn expect_dtype(
        &self,
        op: &'static str,
        arg: &'static str,
        want: DType,
    ) -> Result<()> {
        if self.dtype() != want {
            return Err(Error::DType {
                op,
                arg,
                expected: want,
                got: self.dtype(),
            });
        }
        Ok(())
    }

    /// This tensor's storage, mutably, when this handle is the only one to it (no clone, view or
    /// recorded op holds it), so an in-place update is seen by nobody: what lets the backward pass
    /// add a gradient into a sum it alone owns.
    pub(crate) fn unique_storage_mut(&mut self) -> Option<&mut Storage> {
        let inner = Arc::get_mut(&mut self.0)?;
        if inner.node.is_some() {
            return None;
        }
        Arc::get_mut(&mut inner.storage)
    }
}

/// The device all of an op's inputs live on, or an error naming the op.
pub(crate) fn same_device(op: &'static str, tensors: &[&Tensor]) -> Result<Device> {
    let first = tensors[0].device();
    for t in &tensors[1..] {
        let d = t.device();
        if !d.same_as(&first) {
            return Err(Error::DeviceMismatch {
                op,
                first: first.name(),
                second: d.name(),
            });
        }
    }
    Ok(first)
}
