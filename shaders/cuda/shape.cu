// Block copy between row-major matrices, the one kernel behind narrow, concat and narrow's
// backward (cpu twins: src/backend/cpu/shape.rs): dst[r, dst_col + c] = src[r, src_col + c] for
// r < rows, c < width, src with src_cols columns per row and dst with dst_cols. Elements move as
// raw words (32-bit for f32 and u32, 16-bit for bf16), so values are copied bit for bit.
// Launch shape: blocks of 256 threads, grid-stride loops over rows * width;
// grid = min(ceil(rows * width / 256), 65535).
//   copy_block32, copy_block16   (src, dst, rows, width, src_cols, src_col, dst_cols, dst_col)

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void copy_block32(const unsigned int* src, unsigned int* dst, u64 rows, u64 width,
                                        u64 src_cols, u64 src_col, u64 dst_cols, u64 dst_col) {
    GRID_STRIDE(i, rows * width) {
        u64 r = i / width;
        u64 c = i % width;
        dst[r * dst_cols + dst_col + c] = src[r * src_cols + src_col + c];
    }
}

extern "C" __global__ void copy_block16(const unsigned short* src, unsigned short* dst, u64 rows, u64 width,
                                        u64 src_cols, u64 src_col, u64 dst_cols, u64 dst_col) {
    GRID_STRIDE(i, rows * width) {
        u64 r = i / width;
        u64 c = i % width;
        dst[r * dst_cols + dst_col + c] = src[r * src_cols + src_col + c];
    }
}
