//! Anomaly map and heatmap on the GPU (`postprocess.wgsl`): the same result as
//! [`AnomalyMap::from_patch_scores`](crate::engine::postprocess::AnomalyMap::from_patch_scores),
//! [`Calibration::normalise`] and [`heatmap_rgba`](crate::engine::postprocess::heatmap_rgba)
//! one after the other.
//!
//! The turbo colours come from a 256-entry table built from the same `colorous` map the
//! CPU uses, uploaded once; the kernel interpolates between entries, which keeps every
//! channel within one step of the CPU's exact colour.

use super::conv::check_size;
use super::{
    bind_group, bind_group_layout, compute_pipeline, dispatch, linear_groups, shader_module, to_u32, Access, ErrorScope, GpuContext,
    GpuError,
};
use crate::engine::postprocess::Calibration;
use crate::engine::profile::MapScale;

const SOURCE: &str = include_str!("postprocess.wgsl");
const GROUP: usize = 64;
const OP: &str = "postprocess";

/// Where the patch scores sit and how the map is made from them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapSpec {
    pub grid_height: usize,
    pub grid_width: usize,
    /// Side of the square map, in pixels.
    pub size: usize,
    /// Gaussian blur sigma in pixels (see [`blur_sigma`](crate::engine::postprocess::blur_sigma)); 0 = none.
    pub sigma: f32,
}

/// The map read back from the device: raw scores (as [`AnomalyMap::values`]) and the
/// heatmap, RGBA8 row-major.
///
/// [`AnomalyMap::values`]: crate::engine::postprocess::AnomalyMap
#[derive(Debug, Clone, PartialEq)]
pub struct GpuAnomalyMap {
    pub size: usize,
    pub values: Vec<f32>,
    pub rgba: Vec<u8>,
}

/// One detector's patch scores on the device, and the scale that puts its map on the
/// ensemble's common scale (ignored for a lone detector).
#[derive(Debug, Clone, Copy)]
pub struct MapMember<'a> {
    pub grid_height: usize,
    pub grid_width: usize,
    pub scores: &'a wgpu::Buffer,
    pub scale: MapScale,
}

/// Device buffers of one map: raw values (f32) and packed RGBA (one u32 per pixel,
/// bytes R, G, B, A in memory order).
#[derive(Debug)]
pub struct MapBuffers {
    pub values: wgpu::Buffer,
    pub rgba: wgpu::Buffer,
}

/// Compiled pipelines of `postprocess.wgsl` and the colour table.
#[derive(Debug)]
pub struct PostprocessOp {
    upsample_layout: wgpu::BindGroupLayout,
    upsample_pipeline: wgpu::ComputePipeline,
    blur_layout: wgpu::BindGroupLayout,
    blur_rows_pipeline: wgpu::ComputePipeline,
    blur_cols_pipeline: wgpu::ComputePipeline,
    color_layout: wgpu::BindGroupLayout,
    color_pipeline: wgpu::ComputePipeline,
    color_table: wgpu::Buffer,
}

/// Turbo at `i / 255` for i in 0..256, as (r, g, b, unused) in 0..=255.
pub fn turbo_table() -> Vec<[f32; 4]> {
    (0..256)
        .map(|i| {
            let c = colorous::TURBO.eval_continuous(i as f64 / 255.0);
            [c.r as f32, c.g as f32, c.b as f32, 255.0]
        })
        .collect()
}

/// The normalised taps of the CPU blur (`gaussian_blur`), computed the same way so both
/// paths use the same weights.
fn gaussian_taps(sigma: f32) -> Vec<f32> {
    let radius = (4.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter().map(|k| k / total).collect()
}

impl PostprocessOp {
    pub async fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let device = &ctx.device;
        let module = shader_module(device, "postprocess.wgsl", SOURCE);
        let upsample_layout = bind_group_layout(device, "upsample", &[(0, Access::Read), (1, Access::ReadWrite), (2, Access::Uniform)]);
        let blur_layout =
            bind_group_layout(device, "blur", &[(10, Access::Read), (11, Access::Read), (12, Access::ReadWrite), (13, Access::Uniform)]);
        let color_layout = bind_group_layout(
            device,
            "colorize",
            &[(20, Access::Read), (21, Access::Read), (22, Access::ReadWrite), (23, Access::Uniform)],
        );
        let table: Vec<f32> = turbo_table().into_iter().flatten().collect();
        let op = PostprocessOp {
            upsample_pipeline: compute_pipeline(device, &module, "upsample", &upsample_layout),
            blur_rows_pipeline: compute_pipeline(device, &module, "blur_rows", &blur_layout),
            blur_cols_pipeline: compute_pipeline(device, &module, "blur_cols", &blur_layout),
            color_pipeline: compute_pipeline(device, &module, "colorize", &color_layout),
            upsample_layout,
            blur_layout,
            color_layout,
            color_table: ctx.storage(OP, "turbo table", &table)?,
        };
        scope.finish("postprocess.wgsl").await?;
        Ok(op)
    }

    /// Records map making from a device buffer of patch scores (grid order). Run it
    /// inside an error scope.
    pub fn encode(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        spec: &MapSpec,
        calibration: &Calibration,
        scores: &wgpu::Buffer,
    ) -> Result<MapBuffers, GpuError> {
        let member = MapMember { grid_height: spec.grid_height, grid_width: spec.grid_width, scores, scale: MapScale::IDENTITY };
        self.encode_members(ctx, encoder, spec.size, spec.sigma, calibration, &[member])
    }

    /// Records one map made from several detectors' patch scores, each put on its common
    /// scale and averaged, as the CPU's ensemble does; then blurred and coloured.
    pub fn encode_members(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        size: usize,
        sigma: f32,
        calibration: &Calibration,
        members: &[MapMember<'_>],
    ) -> Result<MapBuffers, GpuError> {
        if members.is_empty() || size == 0 {
            return Err(GpuError::shape(OP, format!("cannot make a {size} px map from {} detectors", members.len())));
        }
        if !sigma.is_finite() {
            return Err(GpuError::shape(OP, format!("blur sigma {sigma} is not a number")));
        }
        let pixels = size * size;
        to_u32(OP, "map pixels", pixels)?;
        let taps = if sigma > 0.0 { gaussian_taps(sigma) } else { Vec::new() };
        let span = (calibration.max - calibration.min).max(f32::EPSILON);
        let groups = linear_groups(ctx, OP, pixels.div_ceil(GROUP))?;
        let groups = (groups.0, groups.1, 1);
        let values = ctx.output(OP, "anomaly map", pixels)?;
        // A lone detector keeps its units; an ensemble averages (map - mean) / std.
        let n = members.len() as f32;
        let mut params = None;
        for (i, m) in members.iter().enumerate() {
            let (gh, gw) = (m.grid_height, m.grid_width);
            if gh == 0 || gw == 0 {
                return Err(GpuError::shape(OP, format!("cannot make a map from a {gh}x{gw} grid")));
            }
            check_size(OP, "patch scores", m.scores, gh * gw)?;
            let (gain, offset) = if members.len() == 1 { (1.0, 0.0) } else { (1.0 / (m.scale.std * n), -m.scale.mean / (m.scale.std * n)) };
            let words = [
                to_u32(OP, "grid height", gh)?,
                to_u32(OP, "grid width", gw)?,
                to_u32(OP, "map size", size)?,
                to_u32(OP, "blur radius", taps.len() / 2)?,
                (gh as f32 / size as f32).to_bits(),
                (gw as f32 / size as f32).to_bits(),
                calibration.threshold.to_bits(),
                span.to_bits(),
                gain.to_bits(),
                offset.to_bits(),
                (i > 0) as u32,
                0,
            ];
            let uniform = ctx.uniform("map params", &words);
            let group = bind_group(&ctx.device, &self.upsample_layout, &[(0, m.scores), (1, &values), (2, &uniform)]);
            dispatch(encoder, &self.upsample_pipeline, &group, groups);
            params = Some(uniform);
        }
        // Blur and colour read only what all members share (size, radius, calibration).
        let params = params.expect("at least one member");

        if !taps.is_empty() {
            let taps = ctx.storage(OP, "blur taps", &taps)?;
            let across = ctx.output(OP, "blurred rows", pixels)?;
            let rows = bind_group(&ctx.device, &self.blur_layout, &[(10, &values), (11, &taps), (12, &across), (13, &params)]);
            dispatch(encoder, &self.blur_rows_pipeline, &rows, groups);
            let cols = bind_group(&ctx.device, &self.blur_layout, &[(10, &across), (11, &taps), (12, &values), (13, &params)]);
            dispatch(encoder, &self.blur_cols_pipeline, &cols, groups);
        }

        let rgba = ctx.output(OP, "heatmap", pixels)?;
        let group = bind_group(&ctx.device, &self.color_layout, &[(20, &values), (21, &self.color_table), (22, &rgba), (23, &params)]);
        dispatch(encoder, &self.color_pipeline, &group, groups);
        Ok(MapBuffers { values, rgba })
    }

    /// Patch scores (grid order) -> raw anomaly map and heatmap, read back.
    pub async fn anomaly_map(
        &self,
        ctx: &GpuContext,
        spec: &MapSpec,
        calibration: &Calibration,
        scores: &[f32],
    ) -> Result<GpuAnomalyMap, GpuError> {
        if scores.len() != spec.grid_height * spec.grid_width {
            return Err(GpuError::shape(OP, format!("{} patch scores for a {}x{} grid", scores.len(), spec.grid_height, spec.grid_width)));
        }
        let scope = ErrorScope::push(&ctx.device);
        let scores = ctx.storage(OP, "patch scores", scores)?;
        let mut encoder = ctx.encoder(OP);
        let map = self.encode(ctx, &mut encoder, spec, calibration, &scores)?;
        let pixels = spec.size * spec.size;
        let mut read = ctx.submit_and_read::<u32>(OP, encoder, &[(&map.values, pixels), (&map.rgba, pixels)], scope).await?.into_iter();
        let values = read.next().unwrap_or_default().into_iter().map(f32::from_bits).collect();
        let rgba = read.next().unwrap_or_default().into_iter().flat_map(u32::to_le_bytes).collect();
        Ok(GpuAnomalyMap { size: spec.size, values, rgba })
    }
}
