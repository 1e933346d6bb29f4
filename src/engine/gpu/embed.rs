//! Embedding on the GPU (`embed.wgsl`): the same patch grid as
//! [`Embedder::embed`](crate::engine::embed::Embedder::embed), from the same feature maps
//! and the same stored projection matrix.
//!
//! Layer selection and shape checks happen on the host exactly as on the CPU; the device
//! does the resampling into the concatenated matrix, the projection (the tiled matrix
//! product of [`ConvOps`]) and the neighbourhood average.

use super::conv::{check_size, Activation, ConvOps, MatmulSpec, OpBuffers};
use super::{
    bind_group, bind_group_layout, compute_pipeline, dispatch, linear_groups, shader_module, to_u32, Access, ErrorScope, GpuContext,
    GpuError,
};
use crate::engine::embed::FeatureMap;
use crate::engine::embed::{Embedder, PatchGrid};

const SOURCE: &str = include_str!("embed.wgsl");
const GROUP: usize = 64;
const OP: &str = "embed";

/// A C x H x W feature map that already lives on the device (CHW, f32).
#[derive(Debug, Clone, Copy)]
pub struct GpuFeatureMap<'a> {
    /// The backbone output it came from, as named in the embedding's layers.
    pub name: &'a str,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub buffer: &'a wgpu::Buffer,
}

impl<'a> GpuFeatureMap<'a> {
    /// A host feature map's shape, with `buffer` holding its data on the device.
    pub fn of(map: &'a FeatureMap, buffer: &'a wgpu::Buffer) -> Self {
        GpuFeatureMap { name: &map.name, channels: map.channels, height: map.height, width: map.width, buffer }
    }
}

/// A patch grid on the device: `buffer[(y * width + x) * dims + k]`, as [`PatchGrid`].
#[derive(Debug)]
pub struct GpuPatchGrid {
    pub height: usize,
    pub width: usize,
    pub dims: usize,
    pub buffer: wgpu::Buffer,
}

impl GpuPatchGrid {
    pub fn positions(&self) -> usize {
        self.height * self.width
    }

    pub fn len(&self) -> usize {
        self.positions() * self.dims
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Compiled pipelines of `embed.wgsl`, plus the matrix product for the projection.
#[derive(Debug)]
pub struct EmbedOp {
    resample_layout: wgpu::BindGroupLayout,
    resample_pipeline: wgpu::ComputePipeline,
    average_layout: wgpu::BindGroupLayout,
    average_pipeline: wgpu::ComputePipeline,
    conv: ConvOps,
}

impl EmbedOp {
    pub async fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let conv = ConvOps::new(ctx).await?;
        let scope = ErrorScope::push(&ctx.device);
        let device = &ctx.device;
        let module = shader_module(device, "embed.wgsl", SOURCE);
        let resample_layout =
            bind_group_layout(device, "resample_into", &[(0, Access::Read), (1, Access::ReadWrite), (2, Access::Uniform)]);
        let average_layout =
            bind_group_layout(device, "neighbourhood_average", &[(10, Access::Read), (11, Access::ReadWrite), (12, Access::Uniform)]);
        let op = EmbedOp {
            resample_pipeline: compute_pipeline(device, &module, "resample_into", &resample_layout),
            average_pipeline: compute_pipeline(device, &module, "neighbourhood_average", &average_layout),
            resample_layout,
            average_layout,
            conv,
        };
        scope.finish("embed.wgsl").await?;
        Ok(op)
    }

    /// The convolution kernels the projection uses; the backbone shares them.
    pub fn conv(&self) -> &ConvOps {
        &self.conv
    }

    /// Records the embedding of device feature maps; returns the grid it will fill.
    /// Run it inside an error scope.
    pub fn encode_embed(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        embedder: &Embedder,
        maps: &[GpuFeatureMap<'_>],
    ) -> Result<GpuPatchGrid, GpuError> {
        // The same selection and errors as the CPU embedder: configured layers, in order.
        let selected: Vec<&GpuFeatureMap> = embedder
            .config()
            .layers
            .iter()
            .map(|name| {
                maps.iter().find(|m| m.name == name).ok_or_else(|| GpuError::shape(OP, format!("the backbone gave no feature map {name}")))
            })
            .collect::<Result<_, _>>()?;
        let finest = selected.first().ok_or_else(|| GpuError::shape(OP, "the embedding selects no layer"))?;
        let (h, w) = (finest.height, finest.width);
        let in_dims: usize = selected.iter().map(|m| m.channels).sum();
        if in_dims != embedder.in_dims() {
            return Err(GpuError::shape(OP, format!("feature maps have {in_dims} channels, the embedding expects {}", embedder.in_dims())));
        }
        let positions = h * w;
        if positions == 0 {
            return Err(GpuError::shape(OP, "the finest feature map is empty"));
        }

        let concat = ctx.output(OP, "concatenated features", positions * in_dims)?;
        let mut offset = 0;
        for map in selected {
            self.encode_resample(ctx, encoder, map, (h, w), in_dims, offset, &concat)?;
            offset += map.channels;
        }

        let projection = embedder.projection();
        let grid = if projection.is_empty() {
            GpuPatchGrid { height: h, width: w, dims: in_dims, buffer: concat }
        } else {
            let dims = embedder.out_dims();
            let matrix = ctx.storage(OP, "projection", projection)?;
            let projected = ctx.output(OP, "projected features", positions * dims)?;
            let spec = MatmulSpec { m: positions, k: in_dims, n: dims, activation: Activation::None };
            self.conv.encode_matmul(ctx, encoder, &spec, OpBuffers { input: &concat, weight: &matrix, bias: None, output: &projected })?;
            GpuPatchGrid { height: h, width: w, dims, buffer: projected }
        };

        let size = embedder.config().neighbourhood;
        if size <= 1 {
            return Ok(grid);
        }
        let averaged = ctx.output(OP, "neighbourhood average", grid.len())?;
        let params = ctx.uniform(
            "average params",
            &[to_u32(OP, "height", h)?, to_u32(OP, "width", w)?, to_u32(OP, "dims", grid.dims)?, to_u32(OP, "radius", size / 2)?],
        );
        to_u32(OP, "grid size", grid.len())?;
        let group = bind_group(&ctx.device, &self.average_layout, &[(10, &grid.buffer), (11, &averaged), (12, &params)]);
        let (x, y) = linear_groups(ctx, OP, grid.len().div_ceil(GROUP))?;
        dispatch(encoder, &self.average_pipeline, &group, (x, y, 1));
        Ok(GpuPatchGrid { buffer: averaged, ..grid })
    }

    /// Writes one map, brought onto the `grid` (height, width), into columns
    /// `offset..offset + channels` of the concatenated matrix.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    fn encode_resample(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        map: &GpuFeatureMap<'_>,
        grid: (usize, usize),
        in_dims: usize,
        offset: usize,
        concat: &wgpu::Buffer,
    ) -> Result<(), GpuError> {
        let (h, w) = grid;
        check_size(OP, map.name, map.buffer, map.channels * map.height * map.width)?;
        if map.channels == 0 || map.height == 0 || map.width == 0 {
            return Err(GpuError::shape(OP, format!("feature map {} is empty", map.name)));
        }
        // The CPU embedder's three cases, decided the same way.
        let (mode, block_h, block_w) = if (map.height, map.width) == (h, w) {
            (0u32, 1, 1)
        } else if map.height > h {
            let (bh, bw) = (map.height / h, map.width / w);
            if bw == 0 {
                return Err(GpuError::shape(
                    OP,
                    format!("feature map {} is {}x{}, finer than the {h}x{w} grid in height only", map.name, map.height, map.width),
                ));
            }
            (1, bh, bw)
        } else {
            (2, 1, 1)
        };
        let block_norm = 1.0 / (block_h * block_w) as f32;
        let (scale_y, scale_x) = (map.height as f32 / h as f32, map.width as f32 / w as f32);
        let words = [
            to_u32(OP, "channels", map.channels)?,
            to_u32(OP, "map height", map.height)?,
            to_u32(OP, "map width", map.width)?,
            to_u32(OP, "grid height", h)?,
            to_u32(OP, "grid width", w)?,
            to_u32(OP, "embedding dims", in_dims)?,
            to_u32(OP, "column offset", offset)?,
            mode,
            to_u32(OP, "block height", block_h)?,
            to_u32(OP, "block width", block_w)?,
            block_norm.to_bits(),
            scale_y.to_bits(),
            scale_x.to_bits(),
            0,
            0,
            0,
        ];
        to_u32(OP, "concatenated size", h * w * in_dims)?;
        let params = ctx.uniform("resample params", &words);
        let group = bind_group(&ctx.device, &self.resample_layout, &[(0, map.buffer), (1, concat), (2, &params)]);
        let (x, y) = linear_groups(ctx, OP, (map.channels * h * w).div_ceil(GROUP))?;
        dispatch(encoder, &self.resample_pipeline, &group, (x, y, 1));
        Ok(())
    }

    /// Embeds host feature maps on the GPU and reads the grid back.
    pub async fn embed(&self, ctx: &GpuContext, embedder: &Embedder, maps: &[FeatureMap]) -> Result<PatchGrid, GpuError> {
        for map in maps {
            if map.data.len() != map.channels * map.height * map.width {
                return Err(GpuError::shape(
                    OP,
                    format!("feature map {} has {} values for {}x{}x{}", map.name, map.data.len(), map.channels, map.height, map.width),
                ));
            }
        }
        let scope = ErrorScope::push(&ctx.device);
        // Only the configured layers go to the device.
        let wanted: Vec<&FeatureMap> = maps.iter().filter(|m| embedder.config().layers.iter().any(|l| l == &m.name)).collect();
        let buffers = wanted.iter().map(|m| ctx.storage(OP, &m.name, &m.data)).collect::<Result<Vec<_>, _>>()?;
        let device_maps: Vec<GpuFeatureMap> = wanted.iter().zip(&buffers).map(|(m, buffer)| GpuFeatureMap::of(m, buffer)).collect();
        let mut encoder = ctx.encoder(OP);
        let grid = self.encode_embed(ctx, &mut encoder, embedder, &device_maps)?;
        let data = ctx.submit_and_read_one(OP, encoder, &grid.buffer, grid.len(), scope).await?;
        Ok(PatchGrid { height: grid.height, width: grid.width, dims: grid.dims, data })
    }
}
