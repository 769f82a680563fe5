//! `crsm-train info`: what devices this machine offers, and a self-check that runs one Mamba block
//! forward and backward on the chosen device and compares loss and gradients with the cpu.

use anyhow::{Context, Result, bail};
use clap::Args;
use crsm::backend::WgpuContext;
use crsm::nn::{MambaBlock, MambaDims, Rng};
use crsm::{Device, DeviceRequest, Tensor, ops};

#[derive(Args)]
pub struct InfoArgs {
    /// Device to check: auto (a real GPU if present, else cpu), cpu, gpu or lavapipe.
    #[arg(long, default_value = "auto")]
    device: String,
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
    let request: DeviceRequest = args.device.parse()?;
    let device = Device::open(request).with_context(|| format!("opening --device {}", args.device))?;
    println!("selected: {}", device.name());
    let worst = self_check(&device)?;
    println!("self-check: one Mamba block forward+backward on {} vs cpu: max relative difference {worst:.2e}", device.name());
    if worst > 1e-3 {
        bail!("self-check failed: {} disagrees with the cpu by {worst:.2e}", device.name());
    }
    println!("self-check: ok");
    Ok(())
}

/// Loss and every parameter gradient of one block on `device`, relative to the cpu.
fn self_check(device: &Device) -> Result<f32> {
    let dims = MambaDims { d_model: 16, d_inner: 32, d_state: 8, dt_rank: 2, conv_kernel: 4 };
    let (b, l) = (2, 19);
    let run = |dev: &Device| -> Result<Vec<Vec<f32>>> {
        let block = MambaBlock::init(dims, 1e-5, &mut Rng::new(7), dev)?;
        let x = Tensor::from_f32(Rng::new(8).normal_vec(b * l * dims.d_model, 1.0), &[b, l, dims.d_model], dev)?;
        let y = block.forward(&x)?;
        let loss = ops::mean(&ops::mul(&y, &y)?)?;
        let grads = loss.backward()?;
        let mut out = vec![loss.to_vec_f32()?];
        for p in block.parameters() {
            out.push(grads.get(p).context("a parameter got no gradient")?.to_vec_f32()?);
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
