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

#[test]
fn cuda_requests_parse_or_say_how_to_get_them() {
    #[cfg(feature = "cuda")]
    {
        assert_eq!(
            "cuda".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Cuda(0)
        );
        assert_eq!(
            "CUDA:1".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Cuda(1)
        );
        assert_eq!(DeviceRequest::Cuda(2).to_string(), "cuda:2");
        let e = "cuda:x".parse::<DeviceRequest>().unwrap_err().to_string();
        assert!(e.contains("cuda:N"), "{e}");
        let e = "tpu".parse::<DeviceRequest>().unwrap_err().to_string();
        assert!(e.contains("cuda"), "{e}");
    }
    #[cfg(not(feature = "cuda"))]
    {
        let e = "cuda:0".parse::<DeviceRequest>().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}

/// Without a driver or a device, opening CUDA is an error that says what is missing, never a
/// panic; an ordinal past the last device names the devices there are.
#[cfg(feature = "cuda")]
#[test]
fn opening_a_missing_cuda_device_is_an_error_not_a_panic() {
    match Device::open(DeviceRequest::Cuda(0)) {
        Ok(dev) => {
            assert!(dev.name().starts_with("cuda:0"), "{}", dev.name());
            let e = Device::open(DeviceRequest::Cuda(1 << 20))
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("cuda:1048576"), "{e}");
        }
        Err(e) => {
            assert!(matches!(e, Error::NoAdapter { wanted: "cuda", .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains("install") || text.contains("no"), "{text}");
        }
    }
    // `auto` still opens something (a Vulkan adapter, CUDA, or the cpu).
    assert!(Device::open(DeviceRequest::Auto).is_ok());
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_counts_tensor_bytes_exactly() {
    // A private device: the shared one is busy with other tests running in parallel.
    if cuda().is_none() {
        return;
    }
    let Device::Cuda(dev) = Device::open(DeviceRequest::Cuda(0)).unwrap() else {
        unreachable!("a cuda request opens a cuda device")
    };
    let device = Device::Cuda(dev.clone());
    assert_eq!(dev.memory_stats().live_bytes, 0);
    let a = Tensor::zeros(&[1000], &device).unwrap();
    let b = ops::scale(&a, 2.0).unwrap();
    assert_eq!(dev.memory_stats().live_bytes, 8000);
    drop(a);
    let s = dev.memory_stats();
    assert_eq!((s.live_bytes, s.peak_live_bytes), (4000, 8000));
    assert_eq!(b.to_vec_f32().unwrap(), vec![0.0; 1000]);
}
