//! Kernel throughput (`cargo bench`): matmul GFLOP/s, selective-scan forward/backward GB/s and
//! tokens/s, and the planner's rollout ops (top-k, sampling, certainty) over vocabulary-sized rows, on the cpu and on the wgpu adapter present (a real GPU, else lavapipe), each printed
//! beside that device's own measured limits (copy bandwidth, best matmul rate) so the numbers read
//! as fractions of what the device can do. Criterion measures; a table at the end divides.
//!
//! `CRSM_BENCH_DEVICES=cpu` (or `gpu`, `lavapipe`) narrows the devices; `--quick` style sizes are
//! used on lavapipe, whose kernels run on the same two cores as everything else.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use crsm::backend::{AdapterKind, WgpuContext};
use crsm::rng::Rng;
use crsm::{Device, Tensor, ops};
use rayon::prelude::*;

/// Waits for the device so the clock reads finished work.
fn sync(t: Tensor) {
    t.device().sync().unwrap();
}

fn random(shape: &[usize], lo: f32, hi: f32, device: &Device, seed: u64) -> Tensor {
    let n = shape.iter().product();
    let v: Vec<f32> = Rng::new(seed)
        .uniform_vec(n, 1.0)
        .into_iter()
        .map(|x| lo + (hi - lo) * (x + 1.0) / 2.0)
        .collect();
    Tensor::from_f32(v, shape, device).unwrap()
}

/// One measured kernel: its time per call and the work one call does.
struct Row {
    device: String,
    kernel: String,
    seconds: f64,
    bytes: Option<f64>,
    flops: Option<f64>,
    tokens: Option<f64>,
}

fn devices() -> Vec<(String, Device)> {
    let wanted = std::env::var("CRSM_BENCH_DEVICES").unwrap_or_else(|_| "cpu,auto".into());
    let mut out = vec![];
    for w in wanted.split(',') {
        match w {
            "cpu" => out.push(("cpu".into(), Device::Cpu)),
            "gpu" | "auto" | "lavapipe" => {
                let kinds: &[AdapterKind] = match w {
                    "gpu" => &[AdapterKind::Hardware],
                    "lavapipe" => &[AdapterKind::Software],
                    _ => &[AdapterKind::Hardware, AdapterKind::Software],
                };
                match kinds.iter().find_map(|k| WgpuContext::open(*k).ok()) {
                    Some(ctx) => out.push((
                        if ctx.is_software() {
                            "lavapipe".into()
                        } else {
                            "gpu".into()
                        },
                        Device::Wgpu(ctx),
                    )),
                    None => eprintln!("bench: no {w} adapter; skipping it"),
                }
            }
            // `--features cuda`: CUDA device 0 (`cuda`) or N (`cuda:N`).
            #[cfg(feature = "cuda")]
            cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
                match cuda.parse::<crsm::DeviceRequest>().and_then(Device::open) {
                    Ok(device) => out.push((cuda.to_string(), device)),
                    Err(e) => eprintln!("bench: {cuda}: {e}; skipping it"),
                }
            }
            other => eprintln!("bench: unknown device {other}"),
        }
    }
    out
}

/// Criterion's time per call of `f`, which must leave its work finished (see `sync`).
fn time_of(
    c: &mut Criterion,
    group: &str,
    id: &str,
    throughput: Throughput,
    mut f: impl FnMut(),
) -> f64 {
    let mut g = c.benchmark_group(group);
    g.throughput(throughput);
    let mut seconds = f64::NAN;
    g.bench_function(BenchmarkId::from_parameter(id), |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                f();
            }
            let e = start.elapsed();
            seconds = e.as_secs_f64() / iters as f64;
            e
        })
    });
    g.finish();
    seconds
}

fn bench_device(c: &mut Criterion, name: &str, device: &Device, rows: &mut Vec<Row>) {
    let software = name != "gpu" && name != "cpu";
    // Copy bandwidth: the memory-bound limit. Bytes moved = read + write. On the cpu a parallel
    // memcpy into a buffer allocated once (allocating per call would time page faults); on wgpu a
    // buffer-to-buffer copy into a pooled buffer.
    let n = if software { 1 << 22 } else { 1 << 24 };
    let x = random(&[n], -1.0, 1.0, device, 1);
    let host = x.to_vec_f32().unwrap();
    let mut dst = vec![0f32; n];
    let s = time_of(
        c,
        &format!("{name}/copy"),
        &format!("{n}"),
        Throughput::Bytes(8 * n as u64),
        || match device {
            Device::Cpu => dst
                .par_chunks_mut(1 << 16)
                .zip(host.par_chunks(1 << 16))
                .for_each(|(d, s)| d.copy_from_slice(s)),
            _ => sync(x.deep_clone().unwrap()),
        },
    );
    rows.push(Row {
        device: name.into(),
        kernel: format!("copy {n} f32"),
        seconds: s,
        bytes: Some(8.0 * n as f64),
        flops: None,
        tokens: None,
    });

    // Matmul: square products of a few sizes.
    let sizes: &[usize] = if software {
        &[64, 256]
    } else {
        &[256, 512, 1024]
    };
    for &m in sizes {
        let a = random(&[m, m], -1.0, 1.0, device, 2);
        let b = random(&[m, m], -1.0, 1.0, device, 3);
        let flops = 2.0 * (m * m * m) as f64;
        let s = time_of(
            c,
            &format!("{name}/matmul"),
            &format!("{m}"),
            Throughput::Elements(flops as u64),
            || sync(ops::matmul(&a, &b, false, false).unwrap()),
        );
        rows.push(Row {
            device: name.into(),
            kernel: format!("matmul {m}^3"),
            seconds: s,
            bytes: None,
            flops: Some(flops),
            tokens: None,
        });
    }

    // Selective scan, forward and backward (mamba-130m's channel count at the larger size).
    let shapes: &[(usize, usize, usize, usize)] = if software {
        &[(1, 64, 64, 16)]
    } else {
        &[(1, 256, 256, 16), (4, 256, 1536, 16)]
    };
    for &(bs, l, e, nst) in shapes {
        let u = random(&[bs, l, e], -1.0, 1.0, device, 4);
        let dt = random(&[bs, l, e], 0.01, 0.3, device, 5);
        let a = random(&[e, nst], -2.0, -0.1, device, 6);
        let bm = random(&[bs, l, nst], -1.0, 1.0, device, 7);
        let cm = random(&[bs, l, nst], -1.0, 1.0, device, 8);
        let d = random(&[e], -1.0, 1.0, device, 9);
        let z = random(&[bs, l, e], -1.0, 1.0, device, 10);
        // Bytes the forward must touch at least: u, dt, z in and y out ([B,L,E] each), B and C.
        let fwd_bytes = 4.0 * (4 * bs * l * e + 2 * bs * l * nst) as f64;
        let id = format!("B{bs} L{l} E{e} N{nst}");
        let _off = crsm::no_grad();
        let s = time_of(
            c,
            &format!("{name}/selective_scan"),
            &id,
            Throughput::Bytes(fwd_bytes as u64),
            || {
                sync(
                    ops::selective_scan(&u, &dt, &a, &bm, &cm, &d, Some(&z), None)
                        .unwrap()
                        .y,
                )
            },
        );
        drop(_off);
        let tokens = Some((bs * l) as f64);
        rows.push(Row {
            device: name.into(),
            kernel: format!("scan fwd {id}"),
            seconds: s,
            bytes: Some(fwd_bytes),
            flops: None,
            tokens,
        });
        let vars: Vec<Tensor> = [&u, &dt, &bm, &cm, &z]
            .iter()
            .map(|t| t.as_variable())
            .collect();
        let seed = random(&[bs, l, e], -1.0, 1.0, device, 11);
        // Backward reads the forward's inputs and dy, and writes du, ddt, dz, dB, dC: ~2x forward.
        let bwd_bytes = 2.0 * fwd_bytes;
        let s = time_of(
            c,
            &format!("{name}/selective_scan_backward"),
            &id,
            Throughput::Bytes(bwd_bytes as u64),
            || {
                let y = ops::selective_scan(
                    &vars[0],
                    &vars[1],
                    &a,
                    &vars[2],
                    &vars[3],
                    &d,
                    Some(&vars[4]),
                    None,
                )
                .unwrap()
                .y;
                let g = y.backward_with(&seed).unwrap();
                sync(g.get(&vars[0]).unwrap().clone())
            },
        );
        rows.push(Row {
            device: name.into(),
            kernel: format!("scan fwd+bwd {id}"),
            seconds: s,
            bytes: Some(fwd_bytes + bwd_bytes),
            flops: None,
            tokens,
        });
    }
}

/// A named op to time.
type Case<'a> = (&'a str, Box<dyn Fn() -> Tensor + 'a>);

/// The planner's rollout ops over rows of mamba-130m's vocabulary. Each reads the [B, V] logits
/// once, so its GB/s counts B * V * 4 bytes; `top_k(log_softmax)` is what `topk_log_softmax` saves
/// (a [B, V] log-softmax written and read back), timed with the same bytes so the rates compare.
fn bench_rollout(c: &mut Criterion, name: &str, device: &Device, rows: &mut Vec<Row>) {
    let software = name != "gpu" && name != "cpu";
    let (b, v, k) = (if software { 4 } else { 16 }, 50_280, 16);
    let x = random(&[b, v], -8.0, 8.0, device, 12);
    let bytes = 4.0 * (b * v) as f64;
    let id = format!("B{b} V{v} k{k}");
    let cases: [Case; 5] = [
        ("top_k", Box::new(|| ops::top_k(&x, k).unwrap().0)),
        (
            "topk_log_softmax",
            Box::new(|| ops::topk_log_softmax(&x, k).unwrap().0),
        ),
        (
            "top_k(log_softmax)",
            Box::new(|| ops::top_k(&ops::log_softmax(&x).unwrap(), k).unwrap().0),
        ),
        (
            "sample_logits",
            Box::new(|| ops::sample_logits(&x, 1.0, 7, 0, 3).unwrap()),
        ),
        ("certainty", Box::new(|| ops::certainty(&x).unwrap())),
    ];
    for (kernel, f) in cases {
        let s = time_of(
            c,
            &format!("{name}/{kernel}"),
            &id,
            Throughput::Bytes(bytes as u64),
            || sync(f()),
        );
        rows.push(Row {
            device: name.into(),
            kernel: format!("{kernel} {id}"),
            seconds: s,
            bytes: Some(bytes),
            flops: None,
            tokens: None,
        });
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let mut rows = Vec::new();
    for (name, device) in devices() {
        bench_device(&mut c, &name, &device, &mut rows);
        bench_rollout(&mut c, &name, &device, &mut rows);
    }
    c.final_summary();
    print_table(&rows);
}

/// Each rate beside the device's own limit: GB/s against its copy bandwidth, GFLOP/s against its
/// best matmul.
fn print_table(rows: &[Row]) {
    let mut copy: BTreeMap<&str, f64> = BTreeMap::new();
    let mut best: BTreeMap<&str, f64> = BTreeMap::new();
    for r in rows {
        if r.kernel.starts_with("copy") {
            copy.insert(&r.device, r.bytes.unwrap_or(0.0) / r.seconds / 1e9);
        }
        if let Some(f) = r.flops {
            let e = best.entry(&r.device).or_insert(0.0);
            *e = e.max(f / r.seconds / 1e9);
        }
    }
    println!(
        "\n| device | kernel | time (ms) | GB/s (share of copy) | GFLOP/s (share of best matmul) | tokens/s |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let gbs = r.bytes.map_or("-".into(), |b| {
            let rate = b / r.seconds / 1e9;
            format!(
                "{rate:.2} ({:.0}% of {:.1})",
                100.0 * rate / copy[r.device.as_str()],
                copy[r.device.as_str()]
            )
        });
        let gflops = r.flops.map_or("-".into(), |f| {
            let rate = f / r.seconds / 1e9;
            format!(
                "{rate:.2} ({:.0}% of {:.1})",
                100.0 * rate / best[r.device.as_str()],
                best[r.device.as_str()]
            )
        });
        let toks = r
            .tokens
            .map_or("-".into(), |t| format!("{:.0}", t / r.seconds));
        println!(
            "| {} | {} | {:.3} | {gbs} | {gflops} | {toks} |",
            r.device,
            r.kernel,
            r.seconds * 1e3
        );
    }
}
