//! WGSL compute kernels for the GPU path, each checked against the CPU engine.
//!
//! Kernels are grouped by op family, one `.wgsl` file each:
//! [`conv`] (convolution, pointwise matrix product, residual add), [`embed`] (feature maps
//! to the patch grid), [`score`] (PaDiM and PatchCore) and [`postprocess`] (anomaly map
//! and heatmap). Every family is a struct that compiles its pipelines once from a
//! [`GpuContext`] handed in by the caller, so tests and the app share one device.
//!
//! Each op has two faces: `encode_*` records the work on buffers that already live on the
//! device (so a whole frame can stay there), and an `async` method that takes host slices,
//! uploads them, runs the kernel and reads the result back. Readback awaits `map_async`;
//! natively it also polls the device, because nothing else drives wgpu there.
//!
//! The device is created with `Limits::defaults()` only, the limits every WebGPU browser
//! grants, so a kernel that works in the native tests also fits in a browser. Shapes that
//! do not fit those limits are split (dispatch grids, PaDiM positions, PatchCore bank) or
//! refused with [`GpuError::TooLarge`].
//!
//! wgpu reports most failures (an invalid shader, a buffer too large, lost memory)
//! through error scopes rather than return values; every op runs inside one and turns what
//! it captures into a [`GpuError`], so nothing here panics on a device error.

pub mod conv;
pub mod embed;
pub mod inspector;
pub mod network;
pub mod postprocess;
pub mod score;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use thiserror::Error;
use wgpu::util::DeviceExt;

pub use conv::{same_padding, Activation, Conv2dSpec, ConvOps, MatmulSpec, OpBuffers, Padding};
pub use embed::{EmbedOp, GpuFeatureMap, GpuPatchGrid};
pub use inspector::{GpuInspection, GpuInspector, InspectError};
pub use network::{GpuNetwork, Plan};
pub use postprocess::{turbo_table, GpuAnomalyMap, MapBuffers, MapMember, MapSpec, PostprocessOp};
pub use score::{GpuPadimModel, GpuPatchCoreModel, ScoreOps, MAX_PADIM_DIMS};

/// What went wrong on the GPU path; each message says what to do about it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GpuError {
    #[error(
        "no GPU adapter found ({0}). Natively, install a Vulkan driver (without a GPU: lavapipe, \
         `apt-get install mesa-vulkan-drivers libvulkan1`); in a browser, use one with WebGPU \
         enabled, or switch to the CPU backend"
    )]
    NoAdapter(String),
    #[error("the GPU refused to create a device ({0}). Switch to the CPU backend")]
    Device(String),
    #[error("GPU op {op}: {reason}")]
    Shape { op: &'static str, reason: String },
    #[error(
        "GPU op {op}: {what} needs {needed} but the device allows {limit}. \
         Use a smaller input or model, or the CPU backend"
    )]
    TooLarge { op: &'static str, what: String, needed: u64, limit: u64 },
    #[error("GPU op {op} failed on the device: {reason}. Switch to the CPU backend if this persists")]
    Execution { op: &'static str, reason: String },
    #[error("the GPU backend cannot run {what} (node {node} of the model); the CPU backend runs this model")]
    Unsupported { node: String, what: String },
}

impl GpuError {
    pub(crate) fn shape(op: &'static str, reason: impl Into<String>) -> Self {
        GpuError::Shape { op, reason: reason.into() }
    }
}

/// The device and queue every kernel runs on. Cheap to clone (wgpu handles are shared).
#[derive(Debug, Clone)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

impl GpuContext {
    /// Wraps a device created elsewhere (tests, or an app that also renders with it).
    pub fn new(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        GpuContext { device, queue }
    }

    /// Opens the default adapter with the default WebGPU limits: the browser's WebGPU on
    /// wasm32, Vulkan natively (the `WGPU_BACKEND` environment variable overrides it).
    pub async fn request() -> Result<Self, GpuError> {
        #[cfg(target_arch = "wasm32")]
        let backends = wgpu::Backends::BROWSER_WEBGPU;
        #[cfg(not(target_arch = "wasm32"))]
        let backends = wgpu::Backends::VULKAN.with_env();
        let mut instance_desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        instance_desc.backends = backends;
        let instance = wgpu::Instance::new(instance_desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(format!("backends {backends:?}: {e}")))?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("damagelens"),
                required_limits: wgpu::Limits::defaults(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(format!("{} ({:?}): {e}", adapter.get_info().name, adapter.get_info().backend)))?;
        Ok(GpuContext { device, queue })
    }

    /// The adapter's name, for logs and the UI's backend label.
    pub fn adapter_name(&self) -> String {
        self.device.adapter_info().name
    }

    /// Fails with [`GpuError::TooLarge`] unless `bytes` fits one storage binding.
    pub fn check_binding(&self, op: &'static str, what: &str, bytes: u64) -> Result<(), GpuError> {
        let limits = self.device.limits();
        let limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if bytes > limit {
            return Err(GpuError::TooLarge { op, what: what.to_string(), needed: bytes, limit });
        }
        Ok(())
    }

    /// A storage buffer holding `data`, for kernels to read (padded to one element, as
    /// empty bindings are invalid). `op` and `what` name it in errors.
    pub fn storage<T: bytemuck::Pod>(&self, op: &'static str, what: &str, data: &[T]) -> Result<wgpu::Buffer, GpuError> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_binding(op, what, bytes.len() as u64)?;
        let padded;
        let contents = if bytes.len() < 4 {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        Ok(self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(what),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        }))
    }

    /// A storage buffer a kernel writes `len` 32-bit values into.
    pub fn output(&self, op: &'static str, what: &str, len: usize) -> Result<wgpu::Buffer, GpuError> {
        let bytes = (len.max(1) * 4) as u64;
        self.check_binding(op, what, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A uniform buffer holding a kernel's parameters (a few 32-bit words).
    pub(crate) fn uniform(&self, what: &str, words: &[u32]) -> wgpu::Buffer {
        // Uniform structs are padded to 16 bytes; give the buffer at least that much.
        let mut padded = words.to_vec();
        padded.resize(words.len().div_ceil(4).max(1) * 4, 0);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(what),
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// Submits `encoder`'s work, reports what `scope` caught, then copies the first `len`
    /// values of each buffer back to the host; returns them in order. This is how a chain
    /// of `encode_*` calls ends: one submission, one readback.
    pub async fn submit_and_read<T: bytemuck::Pod>(
        &self,
        op: &'static str,
        mut encoder: wgpu::CommandEncoder,
        outputs: &[(&wgpu::Buffer, usize)],
        scope: ErrorScope,
    ) -> Result<Vec<Vec<T>>, GpuError> {
        let size_of = std::mem::size_of::<T>() as u64;
        let mut staging = Vec::with_capacity(outputs.len());
        for (buffer, len) in outputs {
            let bytes = (*len as u64 * size_of).max(4);
            let copy = bytes.min(buffer.size());
            let target = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: copy,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_buffer_to_buffer(buffer, 0, &target, 0, copy);
            staging.push((target, *len));
        }
        self.queue.submit([encoder.finish()]);
        scope.finish(op).await?;

        let signals: Vec<Signal<Result<(), wgpu::BufferAsyncError>>> = staging
            .iter()
            .map(|(buffer, _)| {
                let signal = Signal::default();
                let notify = signal.clone();
                buffer.map_async(wgpu::MapMode::Read, .., move |result| notify.complete(result));
                signal
            })
            .collect();
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Execution { op, reason: format!("waiting for the device: {e}") })?;
        let mut results = Vec::with_capacity(staging.len());
        for ((buffer, len), signal) in staging.iter().zip(signals) {
            signal.await.map_err(|e| GpuError::Execution { op, reason: format!("reading the result back: {e}") })?;
            let view =
                buffer.get_mapped_range(..).map_err(|e| GpuError::Execution { op, reason: format!("reading the result back: {e}") })?;
            // The mapped bytes need not be aligned for T: copy rather than cast in place.
            let mut values: Vec<T> = bytemuck::pod_collect_to_vec(&view[..]);
            values.truncate(*len);
            drop(view);
            buffer.unmap();
            results.push(values);
        }
        Ok(results)
    }

    /// [`Self::submit_and_read`] for a single output buffer.
    pub async fn submit_and_read_one<T: bytemuck::Pod>(
        &self,
        op: &'static str,
        encoder: wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        len: usize,
        scope: ErrorScope,
    ) -> Result<Vec<T>, GpuError> {
        let mut results = self.submit_and_read(op, encoder, &[(buffer, len)], scope).await?;
        Ok(results.pop().unwrap_or_default())
    }

    /// Submits `encoder`'s work, reports what `scope` caught, and waits until the device
    /// has done it (so the caller can time a stage).
    pub async fn submit_and_wait(&self, op: &'static str, encoder: wgpu::CommandEncoder, scope: ErrorScope) -> Result<(), GpuError> {
        self.queue.submit([encoder.finish()]);
        scope.finish(op).await?;
        self.work_done().await
    }

    /// Waits until the device has finished everything submitted so far.
    pub async fn work_done(&self) -> Result<(), GpuError> {
        let signal = Signal::default();
        let notify = signal.clone();
        self.queue.on_submitted_work_done(move || notify.complete(()));
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Execution { op: "work done", reason: format!("waiting for the device: {e}") })?;
        signal.await;
        Ok(())
    }

    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }
}

/// Captures the device errors of everything done between [`ErrorScope::push`] and
/// [`ErrorScope::finish`], so they come back as a [`GpuError`] instead of reaching wgpu's
/// default handler, which panics. Wrap `encode_*` calls in one; keep push and finish on
/// one thread with no `.await` between them (wgpu's scopes are per thread).
///
/// Dropped without `finish` (an early return), it pops the scopes and discards what they
/// caught; the fields are declared innermost first because fields drop in declaration
/// order and wgpu insists on popping in reverse order of pushing.
pub struct ErrorScope {
    internal: wgpu::ErrorScopeGuard,
    memory: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl ErrorScope {
    pub fn push(device: &wgpu::Device) -> Self {
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        ErrorScope { internal, memory, validation }
    }

    /// Pops the scopes (innermost first, as wgpu requires) and reports the first error.
    pub fn finish(self, op: &'static str) -> impl Future<Output = Result<(), GpuError>> {
        let internal = self.internal.pop();
        let memory = self.memory.pop();
        let validation = self.validation.pop();
        async move {
            match [validation.await, memory.await, internal.await].into_iter().flatten().next() {
                Some(error) => Err(GpuError::Execution { op, reason: error.to_string() }),
                None => Ok(()),
            }
        }
    }
}

/// A one-shot future completed by a wgpu callback (`map_async`, work done). On the web
/// the callback comes from the browser's event loop, so it must be awaited, not blocked on.
struct Signal<T> {
    state: Arc<Mutex<SignalState<T>>>,
}

impl<T> Clone for Signal<T> {
    fn clone(&self) -> Self {
        Signal { state: self.state.clone() }
    }
}

impl<T> Default for Signal<T> {
    fn default() -> Self {
        Signal { state: Arc::new(Mutex::new(SignalState { result: None, waker: None })) }
    }
}

struct SignalState<T> {
    result: Option<T>,
    waker: Option<Waker>,
}

impl<T> Signal<T> {
    fn complete(&self, result: T) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.result = Some(result);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

impl<T> Future for Signal<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// How a kernel uses one binding.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    Read,
    ReadWrite,
    Uniform,
}

pub(crate) fn bind_group_layout(device: &wgpu::Device, label: &str, entries: &[(u32, Access)]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = entries
        .iter()
        .map(|&(binding, access)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match access {
                    Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    Access::Uniform => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries })
}

/// A compute pipeline with an explicit layout, so one bind group layout is shared by
/// every dispatch and mismatches show up when the pipeline is built, not at dispatch.
pub(crate) fn compute_pipeline(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    entry_point: &str,
    layout: &wgpu::BindGroupLayout,
) -> wgpu::ComputePipeline {
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(entry_point),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry_point),
        layout: Some(&pipeline_layout),
        module,
        entry_point: Some(entry_point),
        compilation_options: Default::default(),
        cache: None,
    })
}

pub(crate) fn shader_module(device: &wgpu::Device, label: &str, source: &'static str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(source.into()) })
}

pub(crate) fn bind_group(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, entries: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> =
        entries.iter().map(|&(binding, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }).collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &entries })
}

/// Records one dispatch of `pipeline` over `groups` workgroups.
pub(crate) fn dispatch(
    encoder: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    groups: (u32, u32, u32),
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups(groups.0, groups.1, groups.2);
}

/// A dispatch whose pipeline, bound buffers and parameters were all made in advance, so
/// recording it again each frame allocates nothing on the device.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32, u32),
}

impl Dispatch {
    pub(crate) fn new(pipeline: &wgpu::ComputePipeline, bind_group: wgpu::BindGroup, groups: (u32, u32, u32)) -> Self {
        Dispatch { pipeline: pipeline.clone(), bind_group, groups }
    }

    /// Records this dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups.0, self.groups.1, self.groups.2);
    }

    /// Records this dispatch in a compute pass of its own.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        dispatch(encoder, &self.pipeline, &self.bind_group, self.groups);
    }
}

/// Folds `groups` workgroups into an (x, y) grid that respects the per-dimension limit;
/// kernels rebuild the linear index as `wid.y * num_workgroups.x + wid.x` and skip
/// the few surplus groups of the last row.
pub(crate) fn linear_groups(ctx: &GpuContext, op: &'static str, groups: usize) -> Result<(u32, u32), GpuError> {
    let max = ctx.device.limits().max_compute_workgroups_per_dimension as usize;
    let groups = groups.max(1);
    let rows = groups.div_ceil(max);
    if rows > max {
        return Err(GpuError::TooLarge { op, what: "workgroups".into(), needed: groups as u64, limit: (max * max) as u64 });
    }
    let cols = groups.div_ceil(rows);
    Ok((cols as u32, rows as u32))
}

/// `value` as a u32 shader parameter, or a clear error for absurd shapes.
pub(crate) fn to_u32(op: &'static str, what: &str, value: usize) -> Result<u32, GpuError> {
    u32::try_from(value).map_err(|_| GpuError::shape(op, format!("{what} = {value} does not fit a 32-bit index")))
}
