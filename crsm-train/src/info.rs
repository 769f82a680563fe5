//! `crsm-train info`: what devices this machine offers, and a self-check of one Mamba block on the
//! chosen device: its gradient against a finite difference along a random direction (a check that
//! means something on any device, the cpu included), and, off the cpu, loss and gradients against
//! the cpu backend.

use anyhow::{Context, Result, bail};
use clap::Args;
use crsm::backend::WgpuContext;
use crsm::nn::{MambaBlock, MambaDims};
use crsm::rng::Rng;
use crsm::{Device, Tensor, ops};

use crate::device_arg::DeviceArg;

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: InfoArgs) -> Result<()> {
    println!("crsm {}", env!("CARGO_PKG_VERSION"));
    println!("cpu: {} rayon threads", rayon::current_num_threads());
    let adapters = WgpuContext::list_adapters();
    if adapters.is_empty() {
        println!("wgpu adapters: none (for software Vulkan: apt-get install mesa-vulkan-drivers)");
    }
    for a in &adapters {
        println!("wgpu adapter: {a}");
    }
    let device = args.device.open()?;
    println!("selected: {}", device.name());
    let (analytic, numeric) = directional_derivative(&device)?;
    let rel = (analytic - numeric).abs() / numeric.abs().max(1e-6);
    println!(
        "self-check: directional derivative on {}: tape {analytic:.6e}, finite difference {numeric:.6e} (relative gap {rel:.1e})",
        device.name()
    );
    if rel > 1e-2 {
        bail!("self-check failed: the gradient disagrees with finite differences by {rel:.1e}");
    }
    if !device.is_cpu() {
        let worst = self_check(&device)?;
        println!(
            "self-check: one Mamba block forward+backward on {} vs cpu: max relative difference {worst:.2e}",
            device.name()
        );
        if worst > 1e-3 {
            bail!(
                "self-check failed: {} disagrees with the cpu by {worst:.2e}",
                device.name()
            );
        }
    }
    println!("self-check: ok");
    Ok(())
}

const DIMS: MambaDims = MambaDims {
    d_model: 16,
    d_inner: 32,
    d_state: 8,
    dt_rank: 2,
    conv_kernel: 4,
};
const BATCH: usize = 2;
const LEN: usize = 19;

fn block_and_input(dev: &Device) -> Result<(MambaBlock, Tensor)> {
    let block = MambaBlock::init(DIMS, 1e-5, &mut Rng::new(7), dev)?;
    let x = Tensor::from_f32(
        Rng::new(8).normal_vec(BATCH * LEN * DIMS.d_model, 1.0),
        &[BATCH, LEN, DIMS.d_model],
        dev,
    )?;
    Ok((block, x))
}

/// loss = mean(block(x)^2).
fn loss_of(block: &MambaBlock, x: &Tensor) -> Result<Tensor> {
    let y = block.forward(x)?;
    Ok(ops::mean(&ops::mul(&y, &y)?)?)
}

/// d loss / d eps of loss(theta + eps v) at eps = 0, for a random direction v: once from the tape
/// (<grad, v>) and once by central differences (f32 forwards, so eps is 1e-2 and the gap ~1e-4).
fn directional_derivative(dev: &Device) -> Result<(f64, f64)> {
    let (mut block, x) = block_and_input(dev)?;
    let grads = loss_of(&block, &x)?.backward()?;
    let mut rng = Rng::new(9);
    let mut directions = Vec::new();
    let mut analytic = 0f64;
    for p in block.parameters() {
        let v = rng.normal_vec(p.elem_count(), 1.0);
        let g = grads
            .get(p)
            .context("a parameter got no gradient")?
            .to_vec_f32()?;
        analytic += g
            .iter()
            .zip(&v)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>();
        directions.push(v);
    }
    let eps = 1e-2f32;
    let _off = crsm::no_grad();
    let base: Vec<Vec<f32>> = block
        .parameters()
        .iter()
        .map(|p| p.to_vec_f32())
        .collect::<crsm::Result<_>>()?;
    let mut at = |sign: f32| -> Result<f64> {
        for ((p, b), v) in block
            .parameters_mut()
            .into_iter()
            .zip(&base)
            .zip(&directions)
        {
            let moved: Vec<f32> = b.iter().zip(v).map(|(b, v)| b + sign * eps * v).collect();
            *p = Tensor::from_f32(moved, p.shape(), dev)?;
        }
        Ok(loss_of(&block, &x)?.scalar()? as f64)
    };
    let numeric = (at(1.0)? - at(-1.0)?) / (2.0 * eps as f64);
    Ok((analytic, numeric))
}

/// Loss and every parameter gradient of one block on `device`, relative to the cpu.
fn self_check(device: &Device) -> Result<f32> {
    let run = |dev: &Device| -> Result<Vec<Vec<f32>>> {
        let (block, x) = block_and_input(dev)?;
        let loss = loss_of(&block, &x)?;
        let grads = loss.backward()?;
        let mut out = vec![loss.to_vec_f32()?];
        for p in block.parameters() {
            out.push(
                grads
                    .get(p)
                    .context("a parameter got no gradient")?
                    .to_vec_f32()?,
            );
        }
        Ok(out)
    };
    let reference = run(&Device::Cpu)?;
    let got = run(device)?;
    let mut worst = 0f32;
    for (r, g) in reference.iter().zip(&got) {
        let scale = r.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (a, b) in r.iter().zip(g) {
            worst = worst.max((a - b).abs() / scale);
        }
    }
    Ok(worst)
}
