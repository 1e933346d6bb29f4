//! One inspection on the GPU: the photo is decoded and normalised on the CPU, then the
//! backbone, the embedding, PaDiM / PatchCore scoring, the anomaly map, its blur, the
//! calibration and the colormap all run on the device, and one readback brings the
//! map and the heatmap home. The result is an [`Inspection`] like the CPU's, so the
//! rest of the app cannot tell the backends apart except by speed.
//!
//! Stages are submitted one after another and awaited, so each gets an honest time
//! (the GPU runs asynchronously; a single submission could only be timed as a whole).

use super::{EmbedOp, ErrorScope, GpuContext, GpuError, GpuNetwork, GpuPadimModel, GpuPatchCoreModel, MapMember, PostprocessOp, ScoreOps};
use crate::engine::clock::{StageTimes, Stopwatch};
use crate::engine::embed::{Embedder, FeatureMap};
use crate::engine::identify::{GlobalEmbedding, POOLED_MAPS};
use crate::engine::image_ops::Preprocess;
use crate::engine::inspector::{check_profile, Inspection, Inspector};
use crate::engine::manifest::BackboneManifest;
use crate::engine::postprocess::{blur_sigma, AnomalyMap};
use crate::engine::profile::{AnomalyModel, MapScale, Profile};
use crate::engine::EngineError;

const OP: &str = "inspect";

enum GpuModel {
    Padim(GpuPadimModel),
    PatchCore(GpuPatchCoreModel),
}

struct GpuDetector {
    embedder: Embedder,
    model: GpuModel,
    scale: MapScale,
}

/// The GPU backend: compiled kernels, the backbone's buffers, and the active profile's
/// models in device memory.
pub struct GpuInspector {
    ctx: GpuContext,
    embed: EmbedOp,
    score: ScoreOps,
    post: PostprocessOp,
    network: GpuNetwork,
    manifest: BackboneManifest,
    preprocess: Preprocess,
    /// The profile whose models are on the device (its name and training size, to catch
    /// a caller that forgot [`GpuInspector::load_profile`]).
    loaded: Option<(String, usize, Vec<GpuDetector>)>,
}

impl GpuInspector {
    /// Compiles the kernels, builds the backbone from `onnx` (the file `cpu` was loaded
    /// from) and runs it once, so the first real frame does not pay for shader
    /// compilation and the first allocation.
    pub async fn new(ctx: GpuContext, cpu: &Inspector, onnx: &[u8]) -> Result<Self, GpuError> {
        let manifest = cpu.manifest().clone();
        let size = cpu.input_size();
        let preprocess = Preprocess { size, ..manifest.preprocess() };
        let names: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
        let embed = EmbedOp::new(&ctx).await?;
        let network = GpuNetwork::new(&ctx, embed.conv(), &manifest, onnx, size, &names).await?;
        let inspector = GpuInspector {
            score: ScoreOps::new(&ctx).await?,
            post: PostprocessOp::new(&ctx).await?,
            embed,
            network,
            manifest,
            preprocess,
            loaded: None,
            ctx,
        };
        let warm_up = vec![0f32; 3 * size as usize * size as usize];
        inspector.network.run(&inspector.ctx, &warm_up).await?;
        Ok(inspector)
    }

    /// The adapter's name, for the backend label.
    pub fn adapter_name(&self) -> String {
        self.ctx.adapter_name()
    }

    /// Destroys the device, as a driver reset or a lost GPU would: every later call
    /// fails with a [`GpuError`]. Tests use it to check the fallback to the CPU.
    pub fn destroy_device(&self) {
        self.ctx.device.destroy();
    }

    /// Device memory held by the backbone (weights and activations), in bytes.
    pub fn backbone_bytes(&self) -> u64 {
        self.network.device_bytes
    }

    /// Uploads `profile`'s models; call it whenever the active profile changes.
    pub async fn load_profile(&mut self, profile: &Profile) -> Result<(), GpuError> {
        self.loaded = None;
        let mut detectors = Vec::with_capacity(profile.detectors.len());
        for d in &profile.detectors {
            let model = match &d.model {
                AnomalyModel::Padim(m) => GpuModel::Padim(self.score.upload_padim(&self.ctx, m).await?),
                AnomalyModel::PatchCore(m) => GpuModel::PatchCore(self.score.upload_patchcore(&self.ctx, m).await?),
            };
            detectors.push(GpuDetector { embedder: d.embedder.clone(), model, scale: d.scale });
        }
        self.loaded = Some((profile.name.clone(), profile.training_images, detectors));
        Ok(())
    }

    /// Inspects one photo under `profile` (whose models [`Self::load_profile`] uploaded).
    /// With `embed`, the two coarsest feature maps come home with the map, for the
    /// photo's global embedding (identification without a second backbone run). A device
    /// failure comes back as [`InspectError::Gpu`], so the caller can fall back to the
    /// CPU and inspect the same photo there.
    pub async fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8], embed: bool) -> Result<GpuInspection, InspectError> {
        check_profile(&self.manifest, self.preprocess.size, profile)?;
        let detectors = match &self.loaded {
            Some((name, images, detectors)) if *name == profile.name && *images == profile.training_images => detectors,
            _ => return Err(GpuError::shape(OP, format!("the models of profile {} are not on the GPU", profile.name)).into()),
        };
        let mut times = StageTimes::default();
        let mut clock = Stopwatch::start();
        let (tensor, dims) = self.preprocess.photo(file, bytes, profile.even_brightness)?;
        times.preprocess = clock.lap();

        let ctx = &self.ctx;
        let scope = ErrorScope::push(&ctx.device);
        let mut encoder = ctx.encoder("backbone");
        self.network.encode(ctx, &mut encoder, &tensor)?;
        ctx.submit_and_wait("backbone", encoder, scope).await?;
        times.backbone = clock.lap();

        let scope = ErrorScope::push(&ctx.device);
        let mut encoder = ctx.encoder("scoring");
        let maps = self.network.feature_maps();
        let mut scores = Vec::with_capacity(detectors.len());
        for d in detectors {
            let grid = self.embed.encode_embed(ctx, &mut encoder, &d.embedder, &maps)?;
            let buffer = match &d.model {
                GpuModel::Padim(m) => self.score.encode_padim(ctx, &mut encoder, m, &grid)?,
                GpuModel::PatchCore(m) => self.score.encode_patchcore(ctx, &mut encoder, m, &grid)?,
            };
            scores.push((grid.height, grid.width, buffer, d.scale));
        }
        ctx.submit_and_wait("scoring", encoder, scope).await?;
        times.scoring = clock.lap();

        let scope = ErrorScope::push(&ctx.device);
        let mut encoder = ctx.encoder("postprocess");
        let members: Vec<MapMember> = scores
            .iter()
            .map(|(h, w, buffer, scale)| MapMember { grid_height: *h, grid_width: *w, scores: buffer, scale: *scale })
            .collect();
        let size = self.preprocess.size as usize;
        let map = self.post.encode_members(ctx, &mut encoder, size, blur_sigma(size as u32), &profile.calibration, &members)?;
        ctx.submit_and_wait("postprocess", encoder, scope).await?;
        times.postprocess = clock.lap();

        let pixels = size * size;
        let mut coarsest = self.network.feature_maps();
        coarsest.sort_by_key(|m| m.height * m.width);
        coarsest.truncate(if embed { POOLED_MAPS } else { 0 });
        let mut outputs = vec![(&map.values, pixels), (&map.rgba, pixels)];
        outputs.extend(coarsest.iter().map(|m| (m.buffer, m.channels * m.height * m.width)));
        let read = ctx.submit_and_read::<u32>(OP, ctx.encoder("readback"), &outputs, ErrorScope::push(&ctx.device)).await?;
        times.readback = clock.lap();
        let embedding = if embed {
            let maps: Vec<FeatureMap> = coarsest
                .iter()
                .zip(&read[2..])
                .map(|(m, data)| FeatureMap {
                    name: m.name.to_string(),
                    channels: m.channels,
                    height: m.height,
                    width: m.width,
                    data: data.iter().map(|v| f32::from_bits(*v)).collect(),
                })
                .collect();
            Some(GlobalEmbedding::from_maps(&maps)?)
        } else {
            None
        };
        let values: Vec<f32> = read[0].iter().map(|v| f32::from_bits(*v)).collect();
        let rgba: Vec<u8> = read[1].iter().flat_map(|v| v.to_le_bytes()).collect();
        // The verdict and outline read the map on the CPU: a max and a border, cheap.
        let inspection = Inspection::new(AnomalyMap { size, values }, &profile.calibration, Some(rgba), dims);
        times.postprocess += clock.lap();
        Ok(GpuInspection { inspection, times, embedding })
    }
}

/// A GPU inspection: the verdict and map, where the time went, and the photo's global
/// embedding when it was asked for.
#[derive(Debug)]
pub struct GpuInspection {
    pub inspection: Inspection,
    pub times: StageTimes,
    pub embedding: Option<GlobalEmbedding>,
}

/// Why a GPU inspection failed: the photo or profile (the CPU would fail the same way),
/// or the device (the CPU may well succeed).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Input(#[from] EngineError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}
