//! The wgpu context itself: exact byte accounting of the buffer pool, reuse of freed buffers,
//! device selection errors, and mixing devices in one op.

use crate::common::*;
use crsm::{Device, DeviceRequest, Error, Tensor, ops};

#[test]
fn pool_counts_bytes_exactly_and_reuses_freed_buffers() {
    if lavapipe().is_none() {
        return;
    }
    // A private context: the shared one is busy with other tests running in parallel.
    let ctx = crsm::backend::WgpuContext::open(crsm::backend::AdapterKind::Software).unwrap();
    let dev = Device::Wgpu(ctx.clone());
    let before = ctx.memory_stats();
    assert_eq!(before.live_bytes, 0);
    let a = Tensor::zeros(&[1000], &dev).unwrap(); // 4000 bytes
    let b = Tensor::zeros(&[3], &dev).unwrap(); // 12 bytes
    let s = ctx.memory_stats();
    assert_eq!(s.live_bytes, 4012);
    assert_eq!(s.driver_allocations, 2);
    drop(a);
    let s = ctx.memory_stats();
    assert_eq!(
        (s.live_bytes, s.pooled_bytes, s.peak_live_bytes),
        (12, 4000, 4012)
    );
    // Same size again: taken from the pool, not the driver.
    let c = Tensor::zeros(&[1000], &dev).unwrap();
    let s = ctx.memory_stats();
    assert_eq!(
        (s.live_bytes, s.pooled_bytes, s.driver_allocations),
        (4012, 0, 2)
    );
    // An op's output is counted too: scale allocates exactly one more [1000] buffer (its uniform
    // parameter block is not a tensor and is not counted).
    let d = ops::scale(&c, 2.0).unwrap();
    assert_eq!(ctx.memory_stats().live_bytes, 8012);
    drop((b, c, d));
    ctx.trim_pool().unwrap();
    assert_eq!(ctx.memory_stats().pooled_bytes, 0);
}

#[test]
fn unknown_device_names_the_value() {
    let e = "tpu".parse::<DeviceRequest>().unwrap_err().to_string();
    assert!(e.contains("tpu") && e.contains("lavapipe"), "{e}");
}

#[test]
fn ops_refuse_inputs_on_different_devices() {
    let Some(gpu) = lavapipe() else { return };
    let a = Tensor::zeros(&[4], &Device::Cpu).unwrap();
    let b = Tensor::zeros(&[4], &gpu).unwrap();
    let e = ops::add(&a, &b).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { op: "add", .. }), "{e}");
}
