// Precision conversions for the products (src/backend/cuda/matmul.rs): f32 to the f16 operands of
// a mixed-precision cuBLAS product, f32 to bf16 weight storage, and bf16 back to f32. Rounding is
// to nearest even with overflow to infinity, as the `half` crate converts on the cpu (cpu twins:
// src/backend/cpu/matmul_f16.rs `round_to_f16`, src/backend/cpu/matmul_bf16.rs `to_bf16`).
// Launch shape: blocks of 256 threads, grid-stride loops over n; grid = min(ceil(n / 256), 65535).
//   to_f16   (x [n] f32, out [n] f16 bits): PTX's cvt.rn.f16.f32 (no header needed: NVRTC ships
//            none by default).
//   to_bf16  (x [n] f32, out [n] bf16 bits): NaN stays a quiet NaN of the same sign.
//   bf16_to_f32  (x [n] bf16 bits, out [n] f32): exact (a 16-bit shift).

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void to_f16(const float* x, unsigned short* out, u64 n) {
    GRID_STRIDE(i, n) {
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x[i]));
        out[i] = h;
    }
}

// By bits, as half::bf16::from_f32: NaN keeps its sign and top mantissa bits with the quiet bit
// set; otherwise round to nearest even on the low 16 bits.
extern "C" __global__ void to_bf16(const float* x, unsigned short* out, u64 n) {
    GRID_STRIDE(i, n) {
        unsigned int bits = __float_as_uint(x[i]);
        if ((bits & 0x7fffffffu) > 0x7f800000u) {
            out[i] = (unsigned short)((bits >> 16) | 0x0040u);
        } else {
            unsigned int round_bit = 0x00008000u;
            if ((bits & round_bit) != 0 && (bits & (3u * round_bit - 1u)) != 0) {
                out[i] = (unsigned short)((bits >> 16) + 1u);
            } else {
                out[i] = (unsigned short)(bits >> 16);
            }
        }
    }
}

extern "C" __global__ void bf16_to_f32(const unsigned short* x, float* out, u64 n) {
    GRID_STRIDE(i, n) { out[i] = __uint_as_float(((unsigned int)x[i]) << 16); }
}
