// The fused AdamW update (torch.optim.AdamW, decoupled weight decay), one thread per element:
//   g = grad_scale * grad;  p *= decay;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
//   p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with decay, step_size, bias_correction2_sqrt computed on the host (AdamWStep::factors). Same
// operation order as src/backend/cpu/adamw.rs.
// Launch shape: blocks of 256 threads, grid-stride loops over n; grid = min(ceil(n / 256), 65535).
//   adamw_step  (param, grad, m, v, param_out, m_out, v_out, n, beta1, beta2, eps, grad_scale,
//                decay, step_size, bias_correction2_sqrt)

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void adamw_step(const float* param, const float* grad, const float* m, const float* v,
                                      float* param_out, float* m_out, float* v_out, u64 n, float beta1,
                                      float beta2, float eps, float grad_scale, float decay, float step_size,
                                      float bias_correction2_sqrt) {
    GRID_STRIDE(i, n) {
        float g = grad[i] * grad_scale;
        float decayed = param[i] * decay;
        float m2 = beta1 * m[i] + (1.0f - beta1) * g;
        float v2 = beta2 * v[i] + (1.0f - beta2) * (g * g);
        float denom = sqrtf(v2) / bias_correction2_sqrt + eps;
        param_out[i] = decayed - step_size * (m2 / denom);
        m_out[i] = m2;
        v_out[i] = v2;
    }
}
