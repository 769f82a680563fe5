//! The one wgpu context: adapter, device and queue, built once (as in wgpu's `repeated_compute`
//! example) and shared by every tensor on it. Kernels are recorded into one pending command encoder
//! and submitted together when a result is read back, so a chain of ops costs one submission.
//!
//! Binding convention for every WGSL kernel: `@group(0) @binding(0)` is a uniform block of 32-bit
//! parameters; `@binding(1..=n)` are the storage buffers, in the order the launcher passes them.
//! A shader file may hold several entry points; each must use binding 0 and exactly the bindings
//! 1..=n it is launched with (the layout is derived from what the entry point uses).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::binding::Binding;
use super::pool::{GpuBuffer, Pool, PoolLock, SharedPool, padded};
use crate::backend::memory::MemoryStats;
use crate::error::{Error, Result};

/// A WGSL source compiled into pipelines on first use.
pub struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
}

/// `kernel!("scan")` is the file `shaders/scan.wgsl`, embedded at build time;
/// `kernel!("matmul_f16" = "matmul_f16_operands", "matmul")` is those files one after the other
/// (a header that declares types, then a body that uses them: one kernel body, two element types).
macro_rules! kernel {
    ($name:literal) => {
        $crate::backend::wgpu::kernel!($name = $name)
    };
    ($name:literal = $($file:literal),+) => {
        $crate::backend::wgpu::Kernel {
            name: $name,
            source: concat!($(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/shaders/",
                $file,
                ".wgsl"
            ))),+),
        }
    };
}
pub(crate) use kernel;

/// Which adapters `open` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterKind {
    /// A discrete, integrated or virtual GPU.
    Hardware,
    /// A CPU implementation of Vulkan (Mesa's lavapipe/llvmpipe).
    Software,
}

/// Tighter binding limits than the adapter's, so tests can make tiny tensors take the chunked
/// launches (see `binding.rs`) that only tables over 128 MiB take on lavapipe.
#[derive(Clone, Copy, Debug)]
pub struct BindingLimits {
    /// Bytes one storage binding may span (lowers `max_storage_buffer_binding_size`).
    pub max_binding_bytes: u64,
    /// A power of two that chunk offsets must be multiples of (raises
    /// `min_storage_buffer_offset_alignment`).
    pub offset_alignment: u32,
}

/// Submit the pending encoder after this many kernels even if nothing is read, to bound its size.
/// A decode step of mamba-130m's shape records about 530 kernels (22 per layer): above this
/// bound, so the step is one submission (at the read of its logits).
const MAX_PENDING_KERNELS: usize = 2048;

pub struct WgpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Whether the device was opened with `SHADER_F16` (f16 in WGSL; `matmul_f16` needs it).
    f16: bool,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), wgpu::ComputePipeline>>,
    pending: Mutex<(Option<wgpu::CommandEncoder>, usize)>,
    pool: SharedPool,
    errors: Arc<Mutex<Vec<String>>>,
}

// ---- opening a device ----------------------------------------------------------------------------

impl WgpuContext {
    pub fn open(kind: AdapterKind) -> Result<Arc<Self>> {
        Self::open_with(kind, None)
    }

    /// `open`, with kernels held to `binding` where it is tighter than the adapter (the device
    /// itself keeps the adapter's limits).
    pub fn open_with_binding_limits(
        kind: AdapterKind,
        binding: BindingLimits,
    ) -> Result<Arc<Self>> {
        if !binding.offset_alignment.is_power_of_two() || binding.max_binding_bytes < 4 {
            return Err(Error::InvalidArgument {
                op: "WgpuContext::open_with_binding_limits",
                detail: format!(
                    "{binding:?}: the alignment must be a power of two and the limit at least 4 bytes"
                ),
            });
        }
        Self::open_with(kind, Some(binding))
    }

    fn open_with(kind: AdapterKind, binding: Option<BindingLimits>) -> Result<Arc<Self>> {
        let adapters = all_adapters();
        let is_software = |a: &wgpu::Adapter| a.get_info().device_type == wgpu::DeviceType::Cpu;
        let wanted = match kind {
            AdapterKind::Hardware => "GPU",
            AdapterKind::Software => "lavapipe (software Vulkan)",
        };
        let adapter = adapters
            .into_iter()
            .filter(|a| match kind {
                AdapterKind::Hardware => !is_software(a),
                AdapterKind::Software => is_software(a),
            })
            // Prefer Vulkan, then discrete over integrated: the order users expect on a laptop.
            .min_by_key(|a| {
                let i = a.get_info();
                (
                    i.backend != wgpu::Backend::Vulkan,
                    i.device_type != wgpu::DeviceType::DiscreteGpu,
                )
            })
            .ok_or_else(|| Error::NoAdapter {
                wanted,
                hint: no_adapter_hint(kind),
            })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        // f16 operands for mixed-precision training, where offered (lavapipe offers it too);
        // a device without it opens all the same and refuses `training.precision` f16.
        let f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
        let required_features = if f16 {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("crsm"),
            required_features,
            // The defaults cap buffers at 256 MiB and workgroup memory at 16 KiB; take what the
            // adapter really offers.
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", info.name)))?;
        let mut limits = limits;
        if let Some(b) = binding {
            limits.max_storage_buffer_binding_size = limits
                .max_storage_buffer_binding_size
                .min(b.max_binding_bytes);
            limits.min_storage_buffer_offset_alignment = limits
                .min_storage_buffer_offset_alignment
                .max(b.offset_alignment);
        }
        // Validation errors would otherwise panic inside wgpu; keep them and return them as errors.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }));
        Ok(Arc::new(WgpuContext {
            device,
            queue,
            info,
            limits,
            f16,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            pending: Mutex::new((None, 0)),
            pool: Mutex::new(Pool::default()),
            errors,
        }))
    }

    /// Every adapter wgpu can see, described, for `crsm-train info`.
    pub fn list_adapters() -> Vec<String> {
        all_adapters()
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!(
                    "{} ({:?}, {:?}, driver {} {})",
                    i.name, i.backend, i.device_type, i.driver, i.driver_info
                )
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// True when WGSL may use f16 (`enable f16;`) on this device.
    pub fn supports_f16(&self) -> bool {
        self.f16
    }
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
}

/// Adapters on Vulkan, Metal and DX12 (the compute backends; GL is left out unless asked for with
/// `WGPU_BACKEND`, which chooses the backends when set).
fn all_adapters() -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    let backends = desc.backends;
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(backends))
}

fn no_adapter_hint(kind: AdapterKind) -> String {
    match kind {
        AdapterKind::Hardware => "no Vulkan, Metal or DX12 GPU is visible. Install your GPU's driver \
            (on Linux its Vulkan ICD, e.g. `apt-get install mesa-vulkan-drivers` for AMD/Intel or the \
            NVIDIA driver), or use --device cpu, or --device lavapipe for software Vulkan"
            .to_string(),
        AdapterKind::Software => "install Mesa's software Vulkan driver: `apt-get install mesa-vulkan-drivers` \
            (Debian/Ubuntu) or `dnf install mesa-vulkan-drivers` (Fedora)"
            .to_string(),
    }
}

// ---- memory --------------------------------------------------------------------------------------

impl WgpuContext {
    pub(crate) fn pool_lock(&self) -> PoolLock<'_> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn memory_stats(&self) -> MemoryStats {
        self.pool_lock().stats
    }

    pub fn reset_peak(&self) {
        let mut pool = self.pool_lock();
        pool.stats.peak_live_bytes = pool.stats.live_bytes;
    }

    /// What the driver-side allocator holds for this device now, (allocated, reserved) bytes, where
    /// wgpu reports it (`generate_allocator_report`: Vulkan and DX12; Metal and GL give None).
    /// It includes pooled buffers (the pool frees nothing until `trim_pool`, so after a step this
    /// is the step's high-water mark as the driver saw it) and wgpu's own staging buffers.
    pub fn driver_memory(&self) -> Option<(u64, u64)> {
        self.device
            .generate_allocator_report()
            .map(|r| (r.total_allocated_bytes, r.total_reserved_bytes))
    }

    /// Frees pooled buffers (after flushing, so none is still in use by pending work).
    pub fn trim_pool(&self) -> Result<()> {
        self.flush()?;
        self.pool_lock().trim();
        Ok(())
    }

    /// A buffer of `bytes` with unspecified contents: the kernel that receives it writes all of it.
    pub fn alloc(self: &Arc<Self>, bytes: u64) -> Result<GpuBuffer> {
        let limit = self.limits.max_buffer_size;
        if padded(bytes) > limit {
            return Err(Error::BindingTooLarge {
                op: "alloc",
                bytes,
                limit,
            });
        }
        let raw = self.pool_lock().take(&self.device, bytes);
        Ok(GpuBuffer::new(raw, bytes, self.clone()))
    }

    /// Copies `bytes` bytes from `src` at byte `src_at` to `dst` at byte `dst_at`, recorded in the
    /// pending encoder: no binding, so no per-binding size limit. Offsets and size are multiples
    /// of 4 (whole f32 or u32 elements).
    pub(crate) fn copy_range(
        &self,
        (src, src_at): (&GpuBuffer, u64),
        (dst, dst_at): (&GpuBuffer, u64),
        bytes: u64,
    ) -> Result<()> {
        self.with_encoder(|enc| {
            enc.copy_buffer_to_buffer(src.raw(), src_at, dst.raw(), dst_at, Some(bytes))
        })
    }

    pub fn zeros(self: &Arc<Self>, bytes: usize) -> Result<GpuBuffer> {
        let out = self.alloc(bytes as u64)?;
        self.with_encoder(|enc| enc.clear_buffer(out.raw(), 0, None))?;
        Ok(out)
    }

    /// Copies host data to a new device buffer. The copy is recorded in the pending encoder (not
    /// `queue.write_buffer`, which would run before already-recorded kernels that may still read a
    /// pooled buffer's previous contents).
    pub fn upload(self: &Arc<Self>, bytes: &[u8]) -> Result<GpuBuffer> {
        let out = self.alloc(bytes.len() as u64)?;
        if bytes.is_empty() {
            return Ok(out);
        }
        let mut padded_bytes = bytes.to_vec();
        padded_bytes.resize(out.raw().size() as usize, 0);
        let staging = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("crsm upload"),
                contents: &padded_bytes,
                usage: wgpu::BufferUsages::COPY_SRC,
            });
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(&staging, 0, out.raw(), 0, None))?;
        Ok(out)
    }

    /// A device-side copy of a buffer (state snapshots; the copy-bandwidth baseline of the benches).
    pub fn duplicate(self: &Arc<Self>, buffer: &GpuBuffer) -> Result<GpuBuffer> {
        let out = self.alloc(buffer.bytes())?;
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(buffer.raw(), 0, out.raw(), 0, None))?;
        Ok(out)
    }

    /// Reads a buffer back to the host; submits and waits for all pending work first.
    pub fn read(&self, buffer: &GpuBuffer) -> Result<Vec<u8>> {
        let size = buffer.raw().size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("crsm readback"),
            size,
            // A separate MAP_READ buffer: storage buffers cannot be mapped.
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(buffer.raw(), 0, &staging, 0, None))?;
        self.flush()?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("map_async callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("map_async: {e}")))?;
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
        let mut data = view.to_vec();
        drop(view);
        staging.unmap();
        data.truncate(buffer.bytes() as usize);
        Ok(data)
    }
}

// ---- kernels -------------------------------------------------------------------------------------

impl WgpuContext {
    fn with_encoder(&self, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()> {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let encoder = pending.0.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("crsm"),
                    })
            });
            record(encoder);
            pending.1 += 1;
            pending.1 >= MAX_PENDING_KERNELS
        };
        if full { self.flush() } else { Ok(()) }
    }

    /// Submits recorded work without waiting for it.
    pub fn flush(&self) -> Result<()> {
        {
            // Submit while holding the lock: otherwise another thread could take a newer encoder
            // and submit it first, running kernels before the ones they depend on.
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.1 = 0;
            if let Some(enc) = pending.0.take() {
                self.queue.submit([enc.finish()]);
            }
        }
        self.take_errors()
    }

    /// Submits and blocks until the device is idle (benches read the clock after this).
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        self.take_errors()
    }

    fn take_errors(&self) -> Result<()> {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.is_empty() {
            return Ok(());
        }
        let all = errors.drain(..).collect::<Vec<_>>().join("; ");
        Err(Error::Gpu(all))
    }

    /// The pipeline for one entry point, with the layout wgpu derives from the shader (so each
    /// binding's read-only or read-write access comes from the WGSL declaration).
    fn pipeline(&self, kernel: &Kernel, entry: &'static str) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kernel.name, entry))
        {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            modules
                .entry(kernel.name)
                .or_insert_with(|| {
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(kernel.name),
                            source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
                        })
                })
                .clone()
        };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            // Do not keep a broken module: the next call reports the error again.
            self.modules
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(kernel.name);
            return Err(Error::Gpu(format!(
                "shaders/{}.wgsl entry {entry}: {e}",
                kernel.name
            )));
        }
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((kernel.name, entry), pipeline.clone());
        Ok(pipeline)
    }

    /// Records one dispatch of `kernel`'s `entry` over `groups` workgroups. `params` fill the
    /// uniform block at binding 0 (f32 values go in as `f32::to_bits`).
    pub fn launch(
        &self,
        kernel: &Kernel,
        entry: &'static str,
        params: &[u32],
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) -> Result<()> {
        let bindings: Vec<Binding> = buffers.iter().map(|&b| Binding::whole(b)).collect();
        self.launch_bindings(kernel, entry, params, &bindings, groups)
    }

    /// `launch` with each storage binding a whole buffer or a slice of one (see `binding.rs`).
    /// A binding over the per-binding limit is `Error::BindingTooLarge` naming the entry point.
    pub fn launch_bindings(
        &self,
        kernel: &Kernel,
        entry: &'static str,
        params: &[u32],
        bindings: &[Binding],
        groups: [u32; 3],
    ) -> Result<()> {
        let limit = self.limits.max_storage_buffer_binding_size;
        let align = self.limits.min_storage_buffer_offset_alignment as u64;
        for b in bindings {
            let bytes = b.bound_bytes();
            if bytes > limit {
                return Err(Error::BindingTooLarge {
                    op: entry,
                    bytes,
                    limit,
                });
            }
            if b.offset % align != 0 || b.offset + bytes > b.buffer.raw().size() || bytes == 0 {
                return Err(Error::InvalidArgument {
                    op: entry,
                    detail: format!(
                        "binding of {bytes} bytes at offset {} in a buffer of {} (offsets must be multiples of {align})",
                        b.offset,
                        b.buffer.raw().size()
                    ),
                });
            }
        }
        if groups
            .iter()
            .any(|&g| g > self.limits.max_compute_workgroups_per_dimension)
        {
            return Err(Error::Gpu(format!(
                "{entry}: dispatch {groups:?} exceeds the per-dimension limit"
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = self.pipeline(kernel, entry)?;
        let bgl = pipeline.get_bind_group_layout(0);
        // Uniform blocks are at least 16 bytes and a multiple of 16.
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("crsm params"),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 1 + i as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.buffer.raw(),
                    offset: b.offset,
                    size: b.size.and_then(wgpu::BufferSize::new),
                }),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &bgl,
            entries: &entries,
        });
        self.with_encoder(|enc| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(entry),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        })
    }

    /// Workgroups covering `invocations` threads of `workgroup_size`, folded into a second dimension
    /// past the 65535-per-dimension limit. Shaders recover the flat index as
    /// `gid.x + gid.y * nwg.x * WG` (with `@builtin(num_workgroups) nwg`) and bounds-check it.
    pub fn grid(&self, invocations: u64, workgroup_size: u32) -> [u32; 3] {
        let groups = invocations.div_ceil(workgroup_size as u64).max(1);
        let max = self.limits.max_compute_workgroups_per_dimension.min(65535) as u64;
        if groups <= max {
            [groups as u32, 1, 1]
        } else {
            [max as u32, groups.div_ceil(max) as u32, 1]
        }
    }
}
