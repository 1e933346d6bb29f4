//! The GPU backend as the service sees it, and the one rule for falling back to the CPU.

use crate::engine::gpu::{GpuError, GpuInspection, GpuInspector, InspectError};
use crate::engine::profile::Profile;
use crate::protocol::{Backend, BackendStatus};

/// What the service needs of a GPU backend. [`GpuInspector`] is the real one; tests put
/// in one that fails on cue.
// The futures are awaited in place, on one thread (a worker, or a test), so they need
// not be `Send`.
#[allow(async_fn_in_trait)]
pub trait GpuBackend {
    /// The adapter's name, for the backend label (often empty in browsers).
    fn adapter_name(&self) -> String;
    /// Uploads a profile's models; called whenever the active profile changed.
    async fn load_profile(&mut self, profile: &Profile) -> Result<(), GpuError>;
    /// Inspects one photo under the profile last loaded; with `embed`, also the photo's
    /// global embedding from the same feature maps (for identification).
    async fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8], embed: bool) -> Result<GpuInspection, InspectError>;
    /// Destroys the device, as a driver reset would (fault injection for tests).
    fn destroy_device(&self);
}

impl GpuBackend for GpuInspector {
    fn adapter_name(&self) -> String {
        GpuInspector::adapter_name(self)
    }

    async fn load_profile(&mut self, profile: &Profile) -> Result<(), GpuError> {
        GpuInspector::load_profile(self, profile).await
    }

    async fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8], embed: bool) -> Result<GpuInspection, InspectError> {
        GpuInspector::inspect(self, profile, file, bytes, embed).await
    }

    fn destroy_device(&self) {
        GpuInspector::destroy_device(self)
    }
}

/// The GPU backend, if there is one.
pub enum Gpu<G> {
    /// Not tried yet.
    Unknown,
    /// Working; `stale` until the active profile's models are uploaded.
    Ready { backend: G, stale: bool },
    /// Why it cannot be used (no WebGPU, no adapter, a failed kernel, a lost device).
    Unavailable(String),
}

/// What a GPU attempt came to.
pub enum Attempt {
    Judged(GpuInspection),
    /// The photo or profile is at fault: the CPU would fail the same way.
    Refused(crate::engine::EngineError),
    /// The device failed; the CPU should take the same photo.
    DeviceFailed(String),
    /// No GPU inspection was tried (CPU chosen, or no GPU).
    NotTried,
}

impl<G: GpuBackend> Gpu<G> {
    /// Marks the active profile's models as out of date on the device.
    pub fn profile_changed(&mut self) {
        if let Gpu::Ready { stale, .. } = self {
            *stale = true;
        }
    }

    pub fn status(&self, active: Backend, notice: Option<String>) -> BackendStatus {
        let (adapter, unavailable) = match self {
            Gpu::Unknown => (None, None),
            Gpu::Ready { backend, .. } => (Some(backend.adapter_name()), None),
            Gpu::Unavailable(why) => (None, Some(why.clone())),
        };
        BackendStatus { active, adapter, unavailable, notice }
    }

    /// Inspects on the GPU, uploading the profile first when it changed.
    pub async fn try_inspect(&mut self, profile: &Profile, file: &str, bytes: &[u8], embed: bool) -> Attempt {
        let Gpu::Ready { backend, stale } = self else { return Attempt::NotTried };
        if *stale {
            if let Err(e) = backend.load_profile(profile).await {
                return Attempt::DeviceFailed(e.to_string());
            }
            *stale = false;
        }
        match backend.inspect(profile, file, bytes, embed).await {
            Ok(judged) => Attempt::Judged(judged),
            Err(InspectError::Input(e)) => Attempt::Refused(e),
            Err(InspectError::Gpu(e)) => Attempt::DeviceFailed(e.to_string()),
        }
    }
}

/// The notice shown once when the GPU fails and the CPU takes over.
pub fn fallback_notice(why: &str) -> String {
    format!(
        "The GPU stopped working, so inspection goes on on the CPU; nothing was lost. Reload the page to try the GPU again. (The GPU said: {why})"
    )
}
