// The planner's rollout kernels (cpu twins and formulas in src/backend/cpu/rollout.rs), forward
// only: per-row top-k, Gumbel-max sampling and the policy's certainty. logits: [rows, v]. One
// workgroup of 256 per row, looping over the row in stripes (column j belongs to invocation
// j % 256), so any v works (v = 50280 for a GPT-NeoX vocabulary); llvmpipe's 65535-iteration loop
// limit allows v up to 16.7M. Every ranking is (value descending, then index ascending), the cpu's
// `ranks_before`, so ties resolve as on the cpu. No float atomics: results are deterministic.
// Params {rows, v, k, flags, seed, stream_base, counter, inv_t (f32), row_offset} for every entry;
// flags bit 0: top_k writes log-probabilities; bit 1: sample_logits is greedy (temperature 0).
// Bindings:
//   top_k           1 logits; 2 values [rows, k] f32; 3 indices [rows, k] u32. Each invocation
//                   keeps its stripe's best k in private memory (insertion sort), then k rounds of
//                   a workgroup argmax over the 256 list heads pick the row's best k in order.
//                   With flag bit 0 an online (max, sum exp) pair per invocation, merged as
//                   cross_entropy.wgsl's row_stats, turns the values into log-softmax values
//                   (the op `topk_log_softmax`).
//   sample_logits   1 logits [rows, n]; 2 ids [rows] u32 = argmax_j logit * inv_t + gumbel(seed,
//                   stream_base + row_offset + row, counter * n + j), or argmax_j logit if greedy.
//   certainty       1 logits; 2 certainties [rows] f32 = sum_j p_j ln p_j: the max, then the two sums.
// Dispatch: ctx.grid(rows, 1) workgroups (rows of one chunk, see binding.rs);
//   row = wid.x + wid.y * nwg.x.

struct Params {
    rows: u32, v: u32, k: u32, flags: u32,
    seed: u32, stream_base: u32, counter: u32, inv_t: f32,
    row_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// top_k
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;
// sample_logits
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
// certainty
@group(0) @binding(2) var<storage, read_write> certainties: array<f32>;

const WG: u32 = 256u;
const MAX_K: u32 = 64u;
// The index of "no candidate": ranks after everything, -inf logits included.
const NONE: u32 = 0xffffffffu;
const NEG_BIG: f32 = -3.4028235e38;

var<workgroup> tv: array<f32, 256>;
var<workgroup> ti: array<u32, 256>;

fn row_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

// ---- the counter-based stream: src/rng.rs, line by line ----------------------------------------

fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn counter_bits(seed: u32, stream: u32, counter: u32) -> u32 {
    return pcg_hash(seed ^ pcg_hash(stream ^ pcg_hash(counter)));
}

// (k + 0.5) / 2^23 from the top 23 bits: exact, in (0, 1).
fn uniform_of_bits(bits: u32) -> f32 {
    return (f32(bits >> 9u) + 0.5) * (1.0 / 8388608.0);
}

// Cephes logf in the same operations as rng::portable_ln (not WGSL's `log`, whose last bits differ
// from the cpu's). The constants are written as bits so no literal rounding can differ.
fn portable_ln(v: f32) -> f32 {
    let bits = bitcast<u32>(v);
    var e = i32((bits >> 23u) & 0xffu) - 126;
    let m = bitcast<f32>((bits & 0x007fffffu) | 0x3f000000u);
    var t: f32;
    if (m < bitcast<f32>(0x3f3504f3u)) {
        e -= 1;
        t = m + m - 1.0;
    } else {
        t = m - 1.0;
    }
    let z = t * t;
    var q = bitcast<f32>(0x3d9021bbu);
    q = q * t + bitcast<f32>(0xbdebd1b8u);
    q = q * t + bitcast<f32>(0x3def251bu);
    q = q * t + bitcast<f32>(0xbdfe5d4fu);
    q = q * t + bitcast<f32>(0x3e11e9bfu);
    q = q * t + bitcast<f32>(0xbe2aae50u);
    q = q * t + bitcast<f32>(0x3e4cceacu);
    q = q * t + bitcast<f32>(0xbe7ffffcu);
    q = q * t + bitcast<f32>(0x3eaaaaaau);
    let ef = f32(e);
    var y = q * t * z;
    y = y + ef * bitcast<f32>(0xb95e8083u);
    y = y - 0.5 * z;
    let r = t + y;
    return r + ef * bitcast<f32>(0x3f318000u);
}

fn gumbel_of_uniform(u: f32) -> f32 {
    return -portable_ln(-portable_ln(u));
}

// ---- ranking -------------------------------------------------------------------------------------

// Whether (av, ai) ranks before (bv, bi): a higher value, or an equal value at a lower index.
fn ranks_before(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
    if (ai == NONE) { return false; }
    if (bi == NONE) { return true; }
    return av > bv || (av == bv && ai < bi);
}

// The best of the 256 candidates in tv/ti, left in slot 0 for every invocation to read.
fn workgroup_best(lid: u32) {
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st && ranks_before(tv[lid + st], ti[lid + st], tv[lid], ti[lid])) {
            tv[lid] = tv[lid + st];
            ti[lid] = ti[lid + st];
        }
        workgroupBarrier();
    }
}

// ---- top_k ---------------------------------------------------------------------------------------

@compute @workgroup_size(256)
fn top_k(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    // The row is uniform across the workgroup, so returning early keeps barriers uniform.
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    let base = row * p.v;
    let k = p.k;
    var lv: array<f32, MAX_K>;
    var li: array<u32, MAX_K>;
    var count = 0u;
    // Online (max, sum exp(x - max)) for the log-probabilities.
    var m = NEG_BIG;
    var s = 0.0;
    for (var j = lid; j < p.v; j += WG) {
        let v = x[base + j];
        if (v > m) {
            s = s * exp(m - v) + 1.0;
            m = v;
        } else {
            s += exp(v - m);
        }
        if (count == k && !ranks_before(v, j, lv[k - 1u], li[k - 1u])) { continue; }
        // Shift the worse entries down one and insert (j is larger than every index held, so
        // only the value decides).
        var at = min(count, k - 1u);
        while (at > 0u && ranks_before(v, j, lv[at - 1u], li[at - 1u])) {
            lv[at] = lv[at - 1u];
            li[at] = li[at - 1u];
            at -= 1u;
        }
        lv[at] = v;
        li[at] = j;
        count = min(count + 1u, k);
    }
    // ln sum_j exp(x_j - max) of the row, with max, when asked for log-probabilities.
    var shift = 0.0;
    if ((p.flags & 1u) != 0u) {
        tv[lid] = m;
        workgroupBarrier();
        for (var st = WG / 2u; st > 0u; st = st >> 1u) {
            if (lid < st) { tv[lid] = max(tv[lid], tv[lid + st]); }
            workgroupBarrier();
        }
        let row_max = tv[0];
        workgroupBarrier();
        tv[lid] = s * exp(m - row_max);
        workgroupBarrier();
        for (var st = WG / 2u; st > 0u; st = st >> 1u) {
            if (lid < st) { tv[lid] += tv[lid + st]; }
            workgroupBarrier();
        }
        shift = row_max + log(tv[0]);
    }
    // k rounds: the best of the 256 list heads is the row's next; its owner advances.
    var head = 0u;
    for (var r = 0u; r < k; r += 1u) {
        workgroupBarrier();
        if (head < count) {
            tv[lid] = lv[head];
            ti[lid] = li[head];
        } else {
            tv[lid] = NEG_BIG;
            ti[lid] = NONE;
        }
        workgroup_best(lid);
        let best = ti[0];
        if (lid == 0u) {
            values[row * k + r] = tv[0] - shift;
            indices[row * k + r] = best;
        }
        if (best != NONE && best % WG == lid) { head += 1u; }
    }
}

// ---- sample_logits -------------------------------------------------------------------------------

@compute @workgroup_size(256)
fn sample_logits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    let base = row * p.v;
    let greedy = (p.flags & 2u) != 0u;
    let stream = p.stream_base + p.row_offset + row;
    let first = p.counter * p.v;
    var bv = NEG_BIG;
    var bi = NONE;
    for (var j = lid; j < p.v; j += WG) {
        var score = x[base + j];
        if (!greedy) {
            let g = gumbel_of_uniform(uniform_of_bits(counter_bits(p.seed, stream, first + j)));
            score = score * p.inv_t + g;
        }
        if (ranks_before(score, j, bv, bi)) {
            bv = score;
            bi = j;
        }
    }
    tv[lid] = bv;
    ti[lid] = bi;
    workgroup_best(lid);
    if (lid == 0u) {
        // No candidate only when every score is NaN (unspecified input): still a valid id.
        ids[row] = select(ti[0], 0u, ti[0] == NONE);
    }
}

// ---- certainty -----------------------------------------------------------------------------------

@compute @workgroup_size(256)
fn certainty(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    let base = row * p.v;
    var m = NEG_BIG;
    for (var j = lid; j < p.v; j += WG) { m = max(m, x[base + j]); }
    tv[lid] = m;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) { tv[lid] = max(tv[lid], tv[lid + st]); }
        workgroupBarrier();
    }
    let row_max = tv[0];
    workgroupBarrier();
    // s = sum e_j, t = sum e_j (x_j - max); a -inf logit (e = 0) adds nothing to either.
    var s = 0.0;
    var t = 0.0;
    for (var j = lid; j < p.v; j += WG) {
        let d = x[base + j] - row_max;
        let e = exp(d);
        s += e;
        if (e > 0.0) { t += e * d; }
    }
    tv[lid] = s;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) { tv[lid] += tv[lid + st]; }
        workgroupBarrier();
    }
    let total = tv[0];
    workgroupBarrier();
    tv[lid] = t;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) { tv[lid] += tv[lid + st]; }
        workgroupBarrier();
    }
    if (lid == 0u) { certainties[row] = tv[0] / total - log(total); }
}
