// The fused AdamW update (torch.optim.AdamW, decoupled weight decay), one invocation per element:
//   g = grad_scale * grad;  p *= decay;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
//   p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with decay = 1 - lr wd, step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t)
// computed on the host (ops::AdamWStep::factors). Same operation order as backend::cpu::adamw.
// Bindings: 0 params {n, beta1, beta2, eps, grad_scale, decay, step_size, bias_correction2_sqrt};
// 1 param [n]; 2 grad [n]; 3 m [n]; 4 v [n]; 5 new param [n]; 6 new m [n]; 7 new v [n].
// Dispatch: ctx.grid(n, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params {
    n: u32, beta1: f32, beta2: f32, eps: f32,
    grad_scale: f32, decay: f32, step_size: f32, bias_correction2_sqrt: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> param_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> v_out: array<f32>;

@compute @workgroup_size(256)
fn adamw_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let g = grad[i] * p.grad_scale;
    let decayed = param[i] * p.decay;
    let m2 = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let v2 = p.beta2 * v[i] + (1.0 - p.beta2) * (g * g);
    let denom = sqrt(v2) / p.bias_correction2_sqrt + p.eps;
    param_out[i] = decayed - p.step_size * (m2 / denom);
    m_out[i] = m2;
    v_out[i] = v2;
}
