//! `--device`, shared by every subcommand that runs a model: its help text, parsing and opening
//! live here. Three forms, because the subcommands' defaults differ: `auto` for most; `cpu` for
//! `memtest` (the byte counts are the same on every device, and the cpu needs no driver); and no
//! default for `pretrain` / `sft` / `quickstart`, where the flag overrides the run config's
//! `training.device`.

use anyhow::{Context, Result};
use clap::Args;
use crsm::{Device, DeviceRequest};

/// What the flag accepts, for every form's help text.
#[cfg(not(feature = "cuda"))]
macro_rules! values {
    () => {
        "auto (a real GPU if present, else cpu), cpu, gpu or lavapipe"
    };
}
#[cfg(feature = "cuda")]
macro_rules! values {
    () => {
        "auto (a real GPU if present, else cpu), cpu, gpu, lavapipe, cuda or cuda:N"
    };
}

/// `--device`, default `auto`.
#[derive(Args)]
pub struct DeviceArg {
    #[arg(long, default_value = "auto", help = values!())]
    device: DeviceRequest,
}

impl DeviceArg {
    pub fn open(&self) -> Result<Device> {
        open(self.device, "--device")
    }
}

/// `--device`, default `cpu` (`memtest`).
#[derive(Args)]
pub struct CpuDeviceArg {
    #[arg(
        long,
        default_value = "cpu",
        help = concat!(values!(), "; the byte counts are the same on every device")
    )]
    device: DeviceRequest,
}

impl CpuDeviceArg {
    pub fn open(&self) -> Result<Device> {
        open(self.device, "--device")
    }
}

/// `--device` over a run config's `training.device`.
#[derive(Args)]
pub struct DeviceOverride {
    #[arg(long, help = concat!(values!(), "; overrides training.device"))]
    device: Option<DeviceRequest>,
}

impl DeviceOverride {
    /// Opens the flag's device, else `configured` (the run config's `training.device`).
    pub fn open(&self, configured: &str) -> Result<Device> {
        match self.device {
            Some(request) => open(request, "--device"),
            None => open(configured.parse()?, "training.device"),
        }
    }
}

fn open(request: DeviceRequest, source: &str) -> Result<Device> {
    // `request` prints as the flag's spelling.
    Device::open(request).with_context(|| format!("opening {source} {request}"))
}
