//! Matrix products through cuBLAS: f32 (`cublasSgemm`), and f16 operands with f32 accumulation
//! (`cublasGemmEx`, operands rounded by `shaders/cuda/convert.cu`), and the products with bf16
//! weights (widened to f32 exactly, then the f32 product).
//!
//! The engine's matrices are row-major; cuBLAS's are column-major, and a row-major [R, C] matrix
//! is the column-major [C, R] one, its transpose. So C = op(A) op(B) (row-major [M, N]) is computed
//! as C^T = op(B)^T op(A)^T: cuBLAS's (m, n, k) = (N, M, K) with B first.
//!
//! Math mode is cuBLAS's default (no TF32), so f32 products round as f32 arithmetic does.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType_t,
};
use cudarc::cublas::{Gemm, GemmConfig};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, grid, launch};
use crate::backend::params::{MatmulDims, MatmulPrecision};
use crate::error::{Error, Result};

const OP: &str = "matmul";

/// cuBLAS's view of one product: (transa, transb, m, n, k, lda, ldb, ldc) with B as its A.
struct Plan {
    trans_first: cublasOperation_t,
    trans_second: cublasOperation_t,
    m: i32,
    n: i32,
    k: i32,
    ld_first: i32,
    ld_second: i32,
    ldc: i32,
}

fn int(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::InvalidArgument {
        op: OP,
        detail: format!("{what} = {v} exceeds cuBLAS's 32-bit sizes"),
    })
}

fn plan(dims: MatmulDims) -> Result<Plan> {
    let MatmulDims {
        m,
        k,
        n,
        transpose_a,
        transpose_b,
    } = dims;
    let t = |yes: bool| {
        if yes {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    // B stored [K, N] is column-major [N, K] (ld N), already op(B)^T; stored [N, K] (transposed)
    // it is column-major [K, N] (ld K) and must be transposed back. Likewise A.
    Ok(Plan {
        trans_first: t(transpose_b),
        trans_second: t(transpose_a),
        m: int(n, "n")?,
        n: int(m, "m")?,
        k: int(k, "k")?,
        ld_first: int(if transpose_b { k } else { n }.max(1), "ldb")?,
        ld_second: int(if transpose_a { m } else { k }.max(1), "lda")?,
        ldc: int(n.max(1), "ldc")?,
    })
}

/// C [M, N] = op(A) op(B) at the given precision.
pub fn matmul(
    dev: &Arc<CudaDevice>,
    a: &CudaBuffer,
    b: &CudaBuffer,
    dims: MatmulDims,
    precision: MatmulPrecision,
) -> Result<CudaBuffer> {
    let (a, b) = (a.f32(OP, "a")?, b.f32(OP, "b")?);
    let MatmulDims { m, k, n, .. } = dims;
    if m == 0 || n == 0 || k == 0 {
        // An empty sum is zero; cuBLAS is not asked.
        return dev.zeros_f32(m * n);
    }
    let p = plan(dims)?;
    let mut c = dev.alloc_f32(m * n)?;
    match precision {
        MatmulPrecision::F32 => sgemm(dev, &p, b, a, c.f32_mut(OP, "c")?)?,
        MatmulPrecision::F16Operands => {
            let a16 = to_f16(dev, a, m * k)?;
            let b16 = to_f16(dev, b, k * n)?;
            gemm_f16(dev, &p, &b16, &a16, c.f32_mut(OP, "c")?)?
        }
    }
    Ok(c)
}

fn sgemm(
    dev: &Arc<CudaDevice>,
    p: &Plan,
    first: &CudaSlice<f32>,
    second: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
) -> Result<()> {
    let cfg = GemmConfig {
        transa: p.trans_first,
        transb: p.trans_second,
        m: p.m,
        n: p.n,
        k: p.k,
        alpha: 1.0f32,
        lda: p.ld_first,
        ldb: p.ld_second,
        beta: 0.0f32,
        ldc: p.ldc,
    };
    dev.with_blas(|blas| {
        // SAFETY: the sizes and leading dimensions describe exactly the buffers' elements (the op
        // checked the shapes; `matmul` allocated c as [M, N]).
        unsafe { blas.gemm(cfg, first, second, c) }
            .map_err(|e| Error::Cuda(format!("cublasSgemm: {e:?}")))
    })
}

/// x [n] f32 rounded to f16 (bits in u16), as `half` rounds on the cpu.
fn to_f16(dev: &Arc<CudaDevice>, x: &CudaSlice<f32>, n: usize) -> Result<CudaSlice<u16>> {
    // SAFETY: device memory, written in full by to_f16 below.
    let mut out = unsafe { dev.stream().alloc::<u16>(n.max(1)) }
        .map_err(|e| super::context::driver_err("cuMemAlloc", e))?;
    let n64 = n as u64;
    launch!(dev, "convert", "to_f16", grid(n); x, &mut out, &n64);
    Ok(out)
}

fn gemm_f16(
    dev: &Arc<CudaDevice>,
    p: &Plan,
    first: &CudaSlice<u16>,
    second: &CudaSlice<u16>,
    c: &mut CudaSlice<f32>,
) -> Result<()> {
    let stream = dev.stream().clone();
    dev.with_blas(|blas| {
        let (alpha, beta) = (1.0f32, 0.0f32);
        let (fp, _f) = first.device_ptr(&stream);
        let (sp, _s) = second.device_ptr(&stream);
        let (cp, _c) = c.device_ptr_mut(&stream);
        // SAFETY: as `sgemm`; f16 operands (CUDA_R_16F), f32 output and accumulation
        // (CUBLAS_COMPUTE_32F), alpha and beta as f32 host values, as that compute type takes.
        unsafe {
            cudarc::cublas::result::gemm_ex(
                *blas.handle(),
                p.trans_first,
                p.trans_second,
                p.m,
                p.n,
                p.k,
                (&alpha) as *const f32 as *const c_void,
                fp as *const c_void,
                cudaDataType_t::CUDA_R_16F,
                p.ld_first,
                sp as *const c_void,
                cudaDataType_t::CUDA_R_16F,
                p.ld_second,
                (&beta) as *const f32 as *const c_void,
                cp as *mut c_void,
                cudaDataType_t::CUDA_R_32F,
                p.ldc,
                cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
            )
        }
        .map_err(|e| Error::Cuda(format!("cublasGemmEx (f16 operands): {e:?}")))
    })
}

/// x [n] f32 rounded to bf16 storage.
pub fn to_bf16(dev: &Arc<CudaDevice>, x: &CudaBuffer, n: usize) -> Result<CudaBuffer> {
    let x = x.f32("to_bf16", "x")?;
    let mut out = dev.alloc_bf16(n)?;
    let o = out.bf16_mut("to_bf16", "out")?;
    let n64 = n as u64;
    launch!(dev, "convert", "to_bf16", grid(n); x, o, &n64);
    Ok(out)
}

/// C [m, n] = A [m, k] W^T with W [n, k] in bf16: W widened to f32 (exact), then the f32 product.
pub fn matmul_bf16_weights(
    dev: &Arc<CudaDevice>,
    a: &CudaBuffer,
    w: &CudaBuffer,
    m: usize,
    k: usize,
    n: usize,
) -> Result<CudaBuffer> {
    const OP_BF16: &str = "matmul_bf16_weights";
    let wb = w.bf16(OP_BF16, "w")?;
    let mut wide = dev.alloc_f32(n * k)?;
    {
        let o = wide.f32_mut(OP_BF16, "w")?;
        let nk = (n * k) as u64;
        launch!(dev, "convert", "bf16_to_f32", grid(n * k); wb, o, &nk);
    }
    let dims = MatmulDims {
        m,
        k,
        n,
        transpose_a: false,
        transpose_b: true,
    };
    matmul(dev, a, &wide, dims, MatmulPrecision::F32)
}
