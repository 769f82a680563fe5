//! The typed parameters of the backend contract's kernels: sizes, flags and hyper-parameters that
//! every backend reads the same way. They live here, beside the contract, so that a backend never
//! imports anything above `backend/` to learn what a kernel is asked to do.

// ---- elementwise ---------------------------------------------------------------------------------

/// The elementwise binary ops; `b` repeats over `a`'s rows (or is one element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Mul,
}

impl BinaryOp {
    /// The op's name, which is also its WGSL entry point and its cpu function.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Mul => "mul",
        }
    }
}

/// The elementwise unary ops. `Scale` carries its constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Silu,
    Softplus,
    Exp,
    Scale(f32),
}

impl UnaryOp {
    /// The op's name (its cpu function and the entry point's stem: `exp`'s WGSL entry point is
    /// `exp_forward`, since `exp` is a WGSL builtin).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Silu => "silu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Exp => "exp",
            UnaryOp::Scale(_) => "scale",
        }
    }
}

// ---- matmul --------------------------------------------------------------------------------------

/// C [M, N] = op(A) op(B), with A stored [M, K] (or [K, M] when `transpose_a`) and B stored
/// [K, N] (or [N, K] when `transpose_b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub transpose_a: bool,
    pub transpose_b: bool,
}

/// The arithmetic of a product: f32 throughout, or operands rounded to f16 and summed in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulPrecision {
    F32,
    F16Operands,
}

// ---- shape ---------------------------------------------------------------------------------------

/// A block of columns of a tensor viewed as [outer, cols]: columns col..col + width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnBlock {
    pub outer: usize,
    pub cols: usize,
    pub col: usize,
    pub width: usize,
}

// ---- embedding -----------------------------------------------------------------------------------

/// n token ids into a [v, d] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingDims {
    pub n: usize,
    pub v: usize,
    pub d: usize,
}

// ---- cross-entropy -------------------------------------------------------------------------------

/// Cross-entropy over `rows` rows of `v` logits; `count` rows are not `ignore_index` (the mean's
/// divisor, counted on the host where the targets are checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossEntropyDims {
    pub rows: usize,
    pub v: usize,
    pub ignore_index: Option<u32>,
    pub count: usize,
}

// ---- conv1d --------------------------------------------------------------------------------------

/// Sizes of one causal depthwise conv1d: batch, length, channels, kernel width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub b: usize,
    pub l: usize,
    pub c: usize,
    pub k: usize,
}

// ---- selective scan ------------------------------------------------------------------------------

/// The forward saves the state every `SCAN_CHUNK` steps (the state before step `k * SCAN_CHUNK`);
/// the backward recomputes the states inside one chunk from it. Matches `CHUNK` in shaders/scan.wgsl.
pub const SCAN_CHUNK: usize = 64;

/// The largest state size the kernels take: one workgroup of 256 holds every state of a channel.
pub const SCAN_MAX_STATE: usize = 256;

/// Sizes of one scan: batch B, length L, channels E (d_inner), states N (d_state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanDims {
    pub batch: usize,
    pub len: usize,
    pub chan: usize,
    pub state: usize,
}

impl ScanDims {
    /// Number of saved chunk-boundary states per (batch, channel): ceil(L / SCAN_CHUNK).
    pub fn n_chunks(&self) -> usize {
        self.len.div_ceil(SCAN_CHUNK)
    }
}

/// The inputs of one scan, as storage, host slices or device buffers. u, delta, z: [B, L, E];
/// a: [E, N]; b, c: [B, L, N]; d: [E]; h0: [B, E, N].
#[derive(Clone, Copy)]
pub struct ScanInputs<T> {
    pub u: T,
    pub delta: T,
    pub a: T,
    pub b: T,
    pub c: T,
    pub d: T,
    pub z: Option<T>,
    pub h0: Option<T>,
}

impl<T> ScanInputs<T> {
    pub fn as_ref(&self) -> ScanInputs<&T> {
        ScanInputs {
            u: &self.u,
            delta: &self.delta,
            a: &self.a,
            b: &self.b,
            c: &self.c,
            d: &self.d,
            z: self.z.as_ref(),
            h0: self.h0.as_ref(),
        }
    }

    /// Each input through `f` with its name (for errors that say which input was wrong).
    pub fn try_map<U, E>(
        self,
        mut f: impl FnMut(T, &'static str) -> Result<U, E>,
    ) -> Result<ScanInputs<U>, E> {
        Ok(ScanInputs {
            u: f(self.u, "u")?,
            delta: f(self.delta, "delta")?,
            a: f(self.a, "a")?,
            b: f(self.b, "b")?,
            c: f(self.c, "c")?,
            d: f(self.d, "d")?,
            z: self.z.map(|t| f(t, "z")).transpose()?,
            h0: self.h0.map(|t| f(t, "h0")).transpose()?,
        })
    }
}

/// What the scan forward returns. `saved` is there when the caller asked for it (a backward may
/// follow).
pub struct ScanForward<T> {
    /// [B, L, E]
    pub y: T,
    /// [B, E, N]: the state after the last step.
    pub last: T,
    /// [B, nc, E, N]: the state before each chunk of `SCAN_CHUNK` steps.
    pub saved: Option<T>,
}

impl<T> ScanForward<T> {
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> ScanForward<U> {
        ScanForward {
            y: f(self.y),
            last: f(self.last),
            saved: self.saved.map(f),
        }
    }
}

/// The gradients of one scan, as host vectors or device buffers. `dz` is present when z was given.
pub struct ScanGrads<T> {
    /// [B, L, E]
    pub du: T,
    /// [B, L, E]
    pub ddelta: T,
    /// [E, N], summed over batch and time.
    pub da: T,
    /// [B, L, N], summed over channels.
    pub db: T,
    /// [B, L, N], summed over channels.
    pub dc: T,
    /// [E], summed over batch and time.
    pub dd: T,
    /// [B, L, E]
    pub dz: Option<T>,
    /// [B, E, N]: dh carried past the first step.
    pub dh0: T,
}

impl<T> ScanGrads<T> {
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> ScanGrads<U> {
        ScanGrads {
            du: f(self.du),
            ddelta: f(self.ddelta),
            da: f(self.da),
            db: f(self.db),
            dc: f(self.dc),
            dd: f(self.dd),
            dz: self.dz.map(&mut f),
            dh0: f(self.dh0),
        }
    }
}

// ---- mamba_step ----------------------------------------------------------------------------------

/// Sizes of one fused decode step of a Mamba block over `batch` independent sequences.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MambaStepDims {
    pub batch: usize,
    pub d_model: usize,
    pub d_inner: usize,
    pub d_state: usize,
    pub dt_rank: usize,
    pub conv_kernel: usize,
    pub norm_eps: f32,
}

/// The weights of one Mamba block (HF names; in_proj, x_proj, dt_proj and out_proj f32 or bf16).
#[derive(Clone, Copy)]
pub struct MambaStepWeights<'a, T> {
    pub norm: &'a T,
    pub in_proj: &'a T,
    pub in_proj_bias: Option<&'a T>,
    pub conv_weight: &'a T,
    pub conv_bias: Option<&'a T>,
    pub x_proj: &'a T,
    pub dt_proj: &'a T,
    pub dt_bias: &'a T,
    pub a_log: &'a T,
    pub d: &'a T,
    pub out_proj: &'a T,
    pub out_proj_bias: Option<&'a T>,
}

// ---- AdamW ---------------------------------------------------------------------------------------

/// The hyper-parameters of one AdamW update.
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based, for bias correction
    pub step: u32,
    /// multiplies the gradient first (clipping coefficient, or 1/loss_scale)
    pub grad_scale: f32,
}

/// The step-dependent factors of an update, computed once on the host in f64 (PyTorch computes
/// them from Python floats) and rounded to f32, so every backend applies the very same constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWFactors {
    /// 1 - lr * weight_decay: the decoupled decay multiplies the param.
    pub decay: f32,
    /// lr / (1 - beta1^step).
    pub step_size: f32,
    /// sqrt(1 - beta2^step).
    pub bias_correction2_sqrt: f32,
}

impl AdamWStep {
    pub fn factors(&self) -> AdamWFactors {
        let t = self.step as i32;
        let bias_correction1 = 1.0 - (self.beta1 as f64).powi(t);
        let bias_correction2 = 1.0 - (self.beta2 as f64).powi(t);
        AdamWFactors {
            decay: (1.0 - self.lr as f64 * self.weight_decay as f64) as f32,
            step_size: (self.lr as f64 / bias_correction1) as f32,
            bias_correction2_sqrt: bias_correction2.sqrt() as f32,
        }
    }
}

// ---- rollout -------------------------------------------------------------------------------------

/// One Gumbel-max draw per row (`sample_logits`): row b uses the counter-based stream
/// (seed, stream_base + b) at counters counter * n + j (`rng::counter_gumbel`), so the planner can
/// replay any draw from these four numbers. Temperature 0 is the greedy argmax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleDraw {
    pub temperature: f32,
    pub seed: u32,
    pub stream_base: u32,
    pub counter: u32,
}
