//! Patch scoring on the GPU (`score.wgsl`): PaDiM and PatchCore, the same scores as
//! [`PadimModel::score`] and [`PatchCoreModel::score`].
//!
//! A model is uploaded once ([`ScoreOps::upload_padim`], [`ScoreOps::upload_patchcore`])
//! and then scores frame after frame. Models larger than one storage binding (128 MiB by
//! default) are split: PaDiM by grid positions, PatchCore's bank by rows; each chunk is
//! one dispatch.

use super::conv::check_size;
use super::embed::GpuPatchGrid;
use super::{
    bind_group, bind_group_layout, compute_pipeline, dispatch, linear_groups, shader_module, to_u32, Access, ErrorScope, GpuContext,
    GpuError,
};
use crate::engine::embed::PatchGrid;
use crate::engine::padim::PadimModel;
use crate::engine::patchcore::PatchCoreModel;

const SOURCE: &str = include_str!("score.wgsl");
/// The largest PaDiM dimension: the centred patch must fit in workgroup memory
/// (`PADIM_MAX_DIMS` in `score.wgsl`; 8 KiB of the 16 KiB WebGPU guarantees).
pub const MAX_PADIM_DIMS: usize = 2048;
const TILE: usize = 16;
const FINISH_GROUP: usize = 64;
/// Bank rows one workgroup scans: long enough to amortise its partial minimum, short
/// enough that a bank of a few thousand rows still spreads over many workgroups.
const SLICE_LEN: usize = 1024;

/// A PaDiM model in device memory.
#[derive(Debug)]
pub struct GpuPadimModel {
    pub height: usize,
    pub width: usize,
    pub dims: usize,
    chunks: Vec<PadimChunk>,
}

#[derive(Debug)]
struct PadimChunk {
    first_position: usize,
    positions: usize,
    mean: wgpu::Buffer,
    inv_chol: wgpu::Buffer,
}

/// A PatchCore memory bank in device memory.
#[derive(Debug)]
pub struct GpuPatchCoreModel {
    pub dims: usize,
    pub bank_size: usize,
    chunks: Vec<BankChunk>,
    slices: usize,
}

#[derive(Debug)]
struct BankChunk {
    rows: usize,
    slice_len: usize,
    first_slice: usize,
    bank: wgpu::Buffer,
    norms: wgpu::Buffer,
}

/// Compiled pipelines of `score.wgsl`.
#[derive(Debug)]
pub struct ScoreOps {
    padim_layout: wgpu::BindGroupLayout,
    padim_pipeline: wgpu::ComputePipeline,
    partial_layout: wgpu::BindGroupLayout,
    partial_pipeline: wgpu::ComputePipeline,
    finish_layout: wgpu::BindGroupLayout,
    finish_pipeline: wgpu::ComputePipeline,
}

impl ScoreOps {
    pub async fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let device = &ctx.device;
        let module = shader_module(device, "score.wgsl", SOURCE);
        let padim_layout = bind_group_layout(
            device,
            "padim",
            &[(0, Access::Read), (1, Access::Read), (2, Access::Read), (3, Access::ReadWrite), (4, Access::Uniform)],
        );
        let partial_layout = bind_group_layout(
            device,
            "nearest_partial",
            &[(10, Access::Read), (11, Access::Read), (12, Access::Read), (13, Access::ReadWrite), (14, Access::Uniform)],
        );
        let finish_layout = bind_group_layout(
            device,
            "nearest_finish",
            &[(20, Access::Read), (21, Access::Read), (22, Access::ReadWrite), (23, Access::Uniform)],
        );
        let ops = ScoreOps {
            padim_pipeline: compute_pipeline(device, &module, "padim", &padim_layout),
            partial_pipeline: compute_pipeline(device, &module, "nearest_partial", &partial_layout),
            finish_pipeline: compute_pipeline(device, &module, "nearest_finish", &finish_layout),
            padim_layout,
            partial_layout,
            finish_layout,
        };
        scope.finish("score.wgsl").await?;
        Ok(ops)
    }

    /// Uploads a PaDiM model, split by position so each chunk fits one storage binding.
    pub async fn upload_padim(&self, ctx: &GpuContext, model: &PadimModel) -> Result<GpuPadimModel, GpuError> {
        self.upload_padim_in_chunks(ctx, model, usize::MAX).await
    }

    /// [`Self::upload_padim`] with at most `max_positions` grid positions per chunk (to
    /// exercise and tune the splitting; the binding limit still applies).
    pub async fn upload_padim_in_chunks(
        &self,
        ctx: &GpuContext,
        model: &PadimModel,
        max_positions: usize,
    ) -> Result<GpuPadimModel, GpuError> {
        const OP: &str = "padim upload";
        let d = model.dims;
        let positions = model.height * model.width;
        let tri = d * (d + 1) / 2;
        if d == 0 || positions == 0 {
            return Err(GpuError::shape(OP, "the model has no positions or dimensions"));
        }
        if d > MAX_PADIM_DIMS {
            return Err(GpuError::TooLarge {
                op: OP,
                what: "PaDiM dimensions (reduce them with the embedding's projection)".into(),
                needed: d as u64,
                limit: MAX_PADIM_DIMS as u64,
            });
        }
        if model.mean.len() != positions * d || model.inv_chol.len() != positions * tri {
            return Err(GpuError::shape(
                OP,
                format!(
                    "model holds {} mean and {} covariance values, a {}x{}x{d} model needs {} and {}",
                    model.mean.len(),
                    model.inv_chol.len(),
                    model.height,
                    model.width,
                    positions * d,
                    positions * tri
                ),
            ));
        }
        let limits = ctx.device.limits();
        let binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) as usize;
        let per_chunk = (binding / (tri * 4)).min(max_positions.max(1));
        if per_chunk == 0 {
            return Err(GpuError::TooLarge {
                op: OP,
                what: "the inverse covariance of one position".into(),
                needed: (tri * 4) as u64,
                limit: binding as u64,
            });
        }
        to_u32(OP, "covariance values per chunk", per_chunk.min(positions) * tri)?;
        let scope = ErrorScope::push(&ctx.device);
        let mut chunks = Vec::new();
        for first in (0..positions).step_by(per_chunk) {
            let count = per_chunk.min(positions - first);
            chunks.push(PadimChunk {
                first_position: first,
                positions: count,
                mean: ctx.storage(OP, "padim mean", &model.mean[first * d..(first + count) * d])?,
                inv_chol: ctx.storage(OP, "padim inverse Cholesky", &model.inv_chol[first * tri..(first + count) * tri])?,
            });
        }
        scope.finish(OP).await?;
        Ok(GpuPadimModel { height: model.height, width: model.width, dims: d, chunks })
    }

    /// Records PaDiM scoring of a device grid; returns the scores buffer (one per position).
    /// Run it inside an error scope.
    pub fn encode_padim(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        model: &GpuPadimModel,
        grid: &GpuPatchGrid,
    ) -> Result<wgpu::Buffer, GpuError> {
        const OP: &str = "padim";
        if (grid.height, grid.width, grid.dims) != (model.height, model.width, model.dims) {
            return Err(GpuError::shape(OP, "image features do not match the trained profile"));
        }
        check_size(OP, "patch grid", &grid.buffer, grid.len())?;
        to_u32(OP, "patch grid size", grid.len())?;
        let scores = ctx.output(OP, "padim scores", grid.positions())?;
        let d = model.dims;
        for chunk in &model.chunks {
            let params = ctx.uniform(
                "padim params",
                &[
                    to_u32(OP, "positions", chunk.positions)?,
                    to_u32(OP, "first position", chunk.first_position)?,
                    to_u32(OP, "dims", d)?,
                    to_u32(OP, "triangle", d * (d + 1) / 2)?,
                ],
            );
            let group = bind_group(
                &ctx.device,
                &self.padim_layout,
                &[(0, &grid.buffer), (1, &chunk.mean), (2, &chunk.inv_chol), (3, &scores), (4, &params)],
            );
            let (x, y) = linear_groups(ctx, OP, chunk.positions)?;
            dispatch(encoder, &self.padim_pipeline, &group, (x, y, 1));
        }
        Ok(scores)
    }

    /// Mahalanobis distance of every patch of `grid` (grid order), as [`PadimModel::score`].
    pub async fn padim_scores(&self, ctx: &GpuContext, model: &GpuPadimModel, grid: &PatchGrid) -> Result<Vec<f32>, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let grid = upload_grid(ctx, "padim", grid)?;
        let mut encoder = ctx.encoder("padim");
        let scores = self.encode_padim(ctx, &mut encoder, model, &grid)?;
        ctx.submit_and_read_one("padim", encoder, &scores, grid.positions(), scope).await
    }

    /// Uploads a PatchCore bank (with its squared norms), split by rows so each chunk fits
    /// one storage binding.
    pub async fn upload_patchcore(&self, ctx: &GpuContext, model: &PatchCoreModel) -> Result<GpuPatchCoreModel, GpuError> {
        self.upload_patchcore_in_chunks(ctx, model, usize::MAX).await
    }

    /// [`Self::upload_patchcore`] with at most `max_rows` bank rows per chunk (to exercise
    /// and tune the splitting; the binding limit still applies).
    pub async fn upload_patchcore_in_chunks(
        &self,
        ctx: &GpuContext,
        model: &PatchCoreModel,
        max_rows: usize,
    ) -> Result<GpuPatchCoreModel, GpuError> {
        const OP: &str = "patchcore upload";
        let d = model.dims;
        if d == 0 || model.bank.is_empty() || !model.bank.len().is_multiple_of(d) {
            return Err(GpuError::shape(OP, format!("a bank of {} values is not whole rows of {d}", model.bank.len())));
        }
        let rows = model.bank.len() / d;
        let limits = ctx.device.limits();
        let binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) as usize;
        let fits = binding / (d * 4);
        if fits == 0 {
            return Err(GpuError::TooLarge { op: OP, what: "one memory bank row".into(), needed: (d * 4) as u64, limit: binding as u64 });
        }
        let mut per_chunk = fits.min(max_rows.max(1));
        // Whole slices per chunk, so only a chunk's last slice is short.
        if per_chunk > SLICE_LEN {
            per_chunk -= per_chunk % SLICE_LEN;
        }
        to_u32(OP, "bank values per chunk", per_chunk.min(rows) * d)?;
        // The same f32 norms as the CPU scorer, so the two agree to the last bit there.
        let norms: Vec<f32> = model.bank.chunks_exact(d).map(|b| b.iter().map(|v| v * v).sum()).collect();
        let scope = ErrorScope::push(&ctx.device);
        let mut chunks = Vec::new();
        let mut slices = 0;
        for first in (0..rows).step_by(per_chunk) {
            let count = per_chunk.min(rows - first);
            let slice_len = SLICE_LEN.min(per_chunk);
            chunks.push(BankChunk {
                rows: count,
                slice_len,
                first_slice: slices,
                bank: ctx.storage(OP, "memory bank", &model.bank[first * d..(first + count) * d])?,
                norms: ctx.storage(OP, "memory bank norms", &norms[first..first + count])?,
            });
            slices += count.div_ceil(slice_len);
        }
        scope.finish(OP).await?;
        Ok(GpuPatchCoreModel { dims: d, bank_size: rows, chunks, slices })
    }

    /// Records PatchCore scoring of a device grid; returns the scores buffer (one per
    /// position). Run it inside an error scope.
    pub fn encode_patchcore(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        model: &GpuPatchCoreModel,
        grid: &GpuPatchGrid,
    ) -> Result<wgpu::Buffer, GpuError> {
        const OP: &str = "patchcore";
        if grid.dims != model.dims {
            return Err(GpuError::shape(OP, "image features do not match the trained profile"));
        }
        check_size(OP, "patch grid", &grid.buffer, grid.len())?;
        let patches = grid.positions();
        to_u32(OP, "patch grid size", grid.len())?;
        to_u32(OP, "partial minima", model.slices * patches)?;
        let partial = ctx.output(OP, "partial minima", model.slices * patches)?;
        let patch_tiles = patches.div_ceil(TILE);
        for chunk in &model.chunks {
            let params = ctx.uniform(
                "nearest params",
                &[
                    to_u32(OP, "patches", patches)?,
                    to_u32(OP, "dims", model.dims)?,
                    to_u32(OP, "bank rows", chunk.rows)?,
                    to_u32(OP, "slice length", chunk.slice_len)?,
                    to_u32(OP, "first slice", chunk.first_slice)?,
                    to_u32(OP, "patch tiles", patch_tiles)?,
                    0,
                    0,
                ],
            );
            let group = bind_group(
                &ctx.device,
                &self.partial_layout,
                &[(10, &grid.buffer), (11, &chunk.bank), (12, &chunk.norms), (13, &partial), (14, &params)],
            );
            let (x, y) = linear_groups(ctx, OP, patch_tiles * chunk.rows.div_ceil(chunk.slice_len))?;
            dispatch(encoder, &self.partial_pipeline, &group, (x, y, 1));
        }
        let scores = ctx.output(OP, "patchcore scores", patches)?;
        let params = ctx.uniform(
            "finish params",
            &[to_u32(OP, "patches", patches)?, to_u32(OP, "dims", model.dims)?, to_u32(OP, "slices", model.slices)?, 0],
        );
        let group = bind_group(&ctx.device, &self.finish_layout, &[(20, &grid.buffer), (21, &partial), (22, &scores), (23, &params)]);
        let (x, y) = linear_groups(ctx, OP, patches.div_ceil(FINISH_GROUP))?;
        dispatch(encoder, &self.finish_pipeline, &group, (x, y, 1));
        Ok(scores)
    }

    /// Distance of every patch of `grid` to its nearest bank entry (grid order), as
    /// [`PatchCoreModel::score`].
    pub async fn patchcore_scores(&self, ctx: &GpuContext, model: &GpuPatchCoreModel, grid: &PatchGrid) -> Result<Vec<f32>, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let grid = upload_grid(ctx, "patchcore", grid)?;
        let mut encoder = ctx.encoder("patchcore");
        let scores = self.encode_patchcore(ctx, &mut encoder, model, &grid)?;
        ctx.submit_and_read_one("patchcore", encoder, &scores, grid.positions(), scope).await
    }
}

fn upload_grid(ctx: &GpuContext, op: &'static str, grid: &PatchGrid) -> Result<GpuPatchGrid, GpuError> {
    if grid.data.len() != grid.positions() * grid.dims || grid.data.is_empty() {
        return Err(GpuError::shape(
            op,
            format!("patch grid holds {} values for {}x{}x{}", grid.data.len(), grid.height, grid.width, grid.dims),
        ));
    }
    Ok(GpuPatchGrid { height: grid.height, width: grid.width, dims: grid.dims, buffer: ctx.storage(op, "patch grid", &grid.data)? })
}
