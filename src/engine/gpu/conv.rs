//! Convolution family (`conv.wgsl`): the ops an EfficientNet-Lite block needs.
//!
//! - [`ConvOps::conv2d`]: direct convolution, NCHW, batch 1, weights OIHW, any stride,
//!   TensorFlow SAME or explicit padding, groups (depthwise when groups == channels),
//!   fused bias and clamp activation (ReLU, ReLU6, Clip). One invocation per output value.
//! - [`ConvOps::matmul`] / [`ConvOps::pointwise`]: a 1x1 convolution is a matrix product
//!   (weight `out x in` times input `in x h*w`), done with 16x16 shared-memory tiles. The
//!   embedding's random projection uses the same kernel.
//! - [`ConvOps::residual_add`]: elementwise sum of two tensors.

use super::{
    bind_group, bind_group_layout, compute_pipeline, linear_groups, shader_module, to_u32, Access, Dispatch, ErrorScope, GpuContext,
    GpuError,
};

const SOURCE: &str = include_str!("conv.wgsl");
/// Must match the `@workgroup_size` of the entry points in `conv.wgsl`.
const CONV_GROUP: usize = 64;
const TILE: usize = 16;
const ADD_GROUP: usize = 256;

/// The activation fused into a convolution or matrix product: a clamp, which covers
/// ReLU, ReLU6 and ONNX `Clip`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    /// min(max(x, 0), 6), EfficientNet-Lite's activation.
    Relu6,
    /// min(max(x, lo), hi); either bound may be infinite.
    Clamp(f32, f32),
}

impl Activation {
    /// The parameter words: whether to clamp, then the bounds.
    fn words(self) -> [u32; 3] {
        let (on, lo, hi) = match self {
            Activation::None => (0, f32::MIN, f32::MAX),
            Activation::Relu6 => (1, 0.0, 6.0),
            Activation::Clamp(lo, hi) => (1, lo.max(f32::MIN), hi.min(f32::MAX)),
        };
        [on, lo.to_bits(), hi.to_bits()]
    }

    /// This activation followed by a clamp to [lo, hi] (a `Max` or `Min` after it).
    pub fn then_clamp(self, lo: f32, hi: f32) -> Self {
        let (a, b) = match self {
            Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Relu6 => (0.0, 6.0),
            Activation::Clamp(a, b) => (a, b),
        };
        // clamp(clamp(x, a, b), lo, hi) is one clamp while the ranges overlap; if they do
        // not, every output is the nearer bound, which the narrowed range also gives.
        let lo2 = a.max(lo).min(hi);
        let hi2 = b.min(hi).max(lo2);
        if (lo2, hi2) == (0.0, 6.0) {
            Activation::Relu6
        } else {
            Activation::Clamp(lo2, hi2)
        }
    }
}

/// How a convolution pads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// TensorFlow SAME (ONNX `SAME_UPPER`): the output is ceil(input / stride).
    #[default]
    Same,
    /// Fixed rows and columns of zeros on each side (ONNX `pads`; VALID is all zeros).
    Explicit { top: usize, left: usize, bottom: usize, right: usize },
}

/// TensorFlow SAME padding (ONNX `auto_pad = SAME_UPPER`) along one axis:
/// returns (output size, padding before). The odd pixel of padding goes after.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride.max(1));
    let total = ((output.saturating_sub(1)) * stride + kernel).saturating_sub(input);
    (output, total / 2)
}

/// Shape of one 2-D convolution over a single image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dSpec {
    pub in_channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub out_channels: usize,
    /// (height, width)
    pub kernel: (usize, usize),
    /// (vertical, horizontal)
    pub stride: (usize, usize),
    /// 1 for a regular convolution, `in_channels` for a depthwise one.
    pub groups: usize,
    pub pad: Padding,
    pub activation: Activation,
}

impl Conv2dSpec {
    pub fn out_height(&self) -> usize {
        match self.pad {
            Padding::Same => same_padding(self.in_height, self.kernel.0, self.stride.0).0,
            Padding::Explicit { top, bottom, .. } => {
                (self.in_height + top + bottom).saturating_sub(self.kernel.0) / self.stride.0.max(1) + 1
            }
        }
    }

    pub fn out_width(&self) -> usize {
        match self.pad {
            Padding::Same => same_padding(self.in_width, self.kernel.1, self.stride.1).0,
            Padding::Explicit { left, right, .. } => {
                (self.in_width + left + right).saturating_sub(self.kernel.1) / self.stride.1.max(1) + 1
            }
        }
    }

    /// Padding before the first row and column: (top, left).
    pub fn padding(&self) -> (usize, usize) {
        match self.pad {
            Padding::Same => {
                (same_padding(self.in_height, self.kernel.0, self.stride.0).1, same_padding(self.in_width, self.kernel.1, self.stride.1).1)
            }
            Padding::Explicit { top, left, .. } => (top, left),
        }
    }

    pub fn input_len(&self) -> usize {
        self.in_channels * self.in_height * self.in_width
    }

    /// OIHW: out_channels x (in_channels / groups) x kernel height x kernel width.
    pub fn weight_len(&self) -> usize {
        self.out_channels * (self.in_channels / self.groups.max(1)) * self.kernel.0 * self.kernel.1
    }

    pub fn output_len(&self) -> usize {
        self.out_channels * self.out_height() * self.out_width()
    }

    fn validate(&self) -> Result<(), GpuError> {
        let dims = [self.in_channels, self.in_height, self.in_width, self.out_channels, self.kernel.0, self.kernel.1];
        if dims.contains(&0) || self.stride.0 == 0 || self.stride.1 == 0 || self.groups == 0 {
            return Err(GpuError::shape("conv2d", format!("sizes, strides and groups must be positive: {self:?}")));
        }
        if let Padding::Explicit { top, left, bottom, right } = self.pad {
            if self.in_height + top + bottom < self.kernel.0 || self.in_width + left + right < self.kernel.1 {
                return Err(GpuError::shape("conv2d", format!("the kernel is larger than the padded input: {self:?}")));
            }
        }
        if !self.in_channels.is_multiple_of(self.groups) || !self.out_channels.is_multiple_of(self.groups) {
            return Err(GpuError::shape(
                "conv2d",
                format!("{} groups do not divide {} input and {} output channels", self.groups, self.in_channels, self.out_channels),
            ));
        }
        Ok(())
    }
}

/// Shape of a matrix product C (m x n) = A (m x k) * B (k x n), row-major, with an
/// optional bias per row of C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatmulSpec {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub activation: Activation,
}

/// Device buffers of one convolution or matrix product; `bias` may be left out.
#[derive(Debug, Clone, Copy)]
pub struct OpBuffers<'a> {
    /// The convolution's input, or A of a matrix product.
    pub input: &'a wgpu::Buffer,
    /// The convolution's weights, or B of a matrix product.
    pub weight: &'a wgpu::Buffer,
    pub bias: Option<&'a wgpu::Buffer>,
    pub output: &'a wgpu::Buffer,
}

/// Compiled pipelines of `conv.wgsl`.
#[derive(Debug)]
pub struct ConvOps {
    conv_layout: wgpu::BindGroupLayout,
    conv_pipeline: wgpu::ComputePipeline,
    matmul_layout: wgpu::BindGroupLayout,
    matmul_pipeline: wgpu::ComputePipeline,
    add_layout: wgpu::BindGroupLayout,
    add_pipeline: wgpu::ComputePipeline,
    /// Bound in place of a missing bias; the kernels never read it.
    no_bias: wgpu::Buffer,
}

impl ConvOps {
    pub async fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let device = &ctx.device;
        let module = shader_module(device, "conv.wgsl", SOURCE);
        let conv_layout = bind_group_layout(
            device,
            "conv2d",
            &[(0, Access::Read), (1, Access::Read), (2, Access::Read), (3, Access::ReadWrite), (4, Access::Uniform)],
        );
        let matmul_layout = bind_group_layout(
            device,
            "matmul",
            &[(10, Access::Read), (11, Access::Read), (12, Access::Read), (13, Access::ReadWrite), (14, Access::Uniform)],
        );
        let add_layout = bind_group_layout(
            device,
            "residual_add",
            &[(20, Access::Read), (21, Access::Read), (22, Access::ReadWrite), (23, Access::Uniform)],
        );
        let ops = ConvOps {
            conv_pipeline: compute_pipeline(device, &module, "conv2d", &conv_layout),
            matmul_pipeline: compute_pipeline(device, &module, "matmul", &matmul_layout),
            add_pipeline: compute_pipeline(device, &module, "residual_add", &add_layout),
            conv_layout,
            matmul_layout,
            add_layout,
            no_bias: ctx.storage("conv", "no bias", &[0f32])?,
        };
        scope.finish("conv.wgsl").await?;
        Ok(ops)
    }

    /// Records a convolution on device buffers (input CHW, weight OIHW, bias per output
    /// channel, output CHW of `spec.output_len()`). Run it inside an error scope.
    pub fn encode_conv2d(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        spec: &Conv2dSpec,
        buffers: OpBuffers<'_>,
    ) -> Result<(), GpuError> {
        self.prepare_conv2d(ctx, spec, buffers)?.encode(encoder);
        Ok(())
    }

    /// A convolution on device buffers made ready to record, as [`Self::encode_conv2d`].
    pub fn prepare_conv2d(&self, ctx: &GpuContext, spec: &Conv2dSpec, buffers: OpBuffers<'_>) -> Result<Dispatch, GpuError> {
        const OP: &str = "conv2d";
        spec.validate()?;
        check_size(OP, "input", buffers.input, spec.input_len())?;
        check_size(OP, "weight", buffers.weight, spec.weight_len())?;
        check_size(OP, "output", buffers.output, spec.output_len())?;
        if let Some(bias) = buffers.bias {
            check_size(OP, "bias", bias, spec.out_channels)?;
        }
        let (pad_top, pad_left) = spec.padding();
        let act = spec.activation.words();
        let words = [
            to_u32(OP, "input channels", spec.in_channels)?,
            to_u32(OP, "input height", spec.in_height)?,
            to_u32(OP, "input width", spec.in_width)?,
            to_u32(OP, "output channels", spec.out_channels)?,
            to_u32(OP, "output height", spec.out_height())?,
            to_u32(OP, "output width", spec.out_width())?,
            to_u32(OP, "kernel height", spec.kernel.0)?,
            to_u32(OP, "kernel width", spec.kernel.1)?,
            to_u32(OP, "vertical stride", spec.stride.0)?,
            to_u32(OP, "horizontal stride", spec.stride.1)?,
            to_u32(OP, "top padding", pad_top)?,
            to_u32(OP, "left padding", pad_left)?,
            to_u32(OP, "groups", spec.groups)?,
            buffers.bias.is_some() as u32,
            act[0],
            act[1],
            act[2],
            0,
            0,
        ];
        to_u32(OP, "output size", spec.output_len())?;
        let params = ctx.uniform("conv2d params", &words);
        let bias = buffers.bias.unwrap_or(&self.no_bias);
        let group = bind_group(
            &ctx.device,
            &self.conv_layout,
            &[(0, buffers.input), (1, buffers.weight), (2, bias), (3, buffers.output), (4, &params)],
        );
        let (x, y) = linear_groups(ctx, OP, spec.output_len().div_ceil(CONV_GROUP))?;
        Ok(Dispatch::new(&self.conv_pipeline, group, (x, y, 1)))
    }

    /// Convolves one CHW image: uploads, runs and reads back the CHW output.
    pub async fn conv2d(
        &self,
        ctx: &GpuContext,
        spec: &Conv2dSpec,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>, GpuError> {
        const OP: &str = "conv2d";
        spec.validate()?;
        check_len(OP, "input", input, spec.input_len())?;
        check_len(OP, "weight", weight, spec.weight_len())?;
        if let Some(bias) = bias {
            check_len(OP, "bias", bias, spec.out_channels)?;
        }
        let scope = ErrorScope::push(&ctx.device);
        let input = ctx.storage(OP, "conv input", input)?;
        let weight = ctx.storage(OP, "conv weight", weight)?;
        let bias = bias.map(|b| ctx.storage(OP, "conv bias", b)).transpose()?;
        let output = ctx.output(OP, "conv output", spec.output_len())?;
        let mut encoder = ctx.encoder(OP);
        self.encode_conv2d(ctx, &mut encoder, spec, OpBuffers { input: &input, weight: &weight, bias: bias.as_ref(), output: &output })?;
        ctx.submit_and_read_one(OP, encoder, &output, spec.output_len(), scope).await
    }

    /// Records C = A * B (+ bias per row of C) on device buffers: `input` is A, `weight`
    /// is B. Run it inside an error scope.
    pub fn encode_matmul(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        spec: &MatmulSpec,
        buffers: OpBuffers<'_>,
    ) -> Result<(), GpuError> {
        self.prepare_matmul(ctx, spec, buffers)?.encode(encoder);
        Ok(())
    }

    /// A matrix product on device buffers made ready to record, as [`Self::encode_matmul`].
    pub fn prepare_matmul(&self, ctx: &GpuContext, spec: &MatmulSpec, buffers: OpBuffers<'_>) -> Result<Dispatch, GpuError> {
        const OP: &str = "matmul";
        if spec.m == 0 || spec.k == 0 || spec.n == 0 {
            return Err(GpuError::shape(OP, format!("empty matrix product {spec:?}")));
        }
        check_size(OP, "A", buffers.input, spec.m * spec.k)?;
        check_size(OP, "B", buffers.weight, spec.k * spec.n)?;
        check_size(OP, "C", buffers.output, spec.m * spec.n)?;
        if let Some(bias) = buffers.bias {
            check_size(OP, "bias", bias, spec.m)?;
        }
        to_u32(OP, "A size", spec.m * spec.k)?;
        to_u32(OP, "B size", spec.k * spec.n)?;
        to_u32(OP, "C size", spec.m * spec.n)?;
        let col_tiles = spec.n.div_ceil(TILE);
        let act = spec.activation.words();
        let words = [
            to_u32(OP, "rows", spec.m)?,
            to_u32(OP, "columns", spec.n)?,
            to_u32(OP, "inner size", spec.k)?,
            buffers.bias.is_some() as u32,
            to_u32(OP, "column tiles", col_tiles)?,
            act[0],
            act[1],
            act[2],
        ];
        let params = ctx.uniform("matmul params", &words);
        let bias = buffers.bias.unwrap_or(&self.no_bias);
        let group = bind_group(
            &ctx.device,
            &self.matmul_layout,
            &[(10, buffers.input), (11, buffers.weight), (12, bias), (13, buffers.output), (14, &params)],
        );
        let (x, y) = linear_groups(ctx, OP, spec.m.div_ceil(TILE) * col_tiles)?;
        Ok(Dispatch::new(&self.matmul_pipeline, group, (x, y, 1)))
    }

    /// C = A * B (+ bias per row), all row-major; returns C (m x n).
    pub async fn matmul(
        &self,
        ctx: &GpuContext,
        spec: &MatmulSpec,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>, GpuError> {
        const OP: &str = "matmul";
        check_len(OP, "A", a, spec.m * spec.k)?;
        check_len(OP, "B", b, spec.k * spec.n)?;
        if let Some(bias) = bias {
            check_len(OP, "bias", bias, spec.m)?;
        }
        let scope = ErrorScope::push(&ctx.device);
        let a = ctx.storage(OP, "A", a)?;
        let b = ctx.storage(OP, "B", b)?;
        let bias = bias.map(|v| ctx.storage(OP, "bias", v)).transpose()?;
        let c = ctx.output(OP, "C", spec.m * spec.n)?;
        let mut encoder = ctx.encoder(OP);
        self.encode_matmul(ctx, &mut encoder, spec, OpBuffers { input: &a, weight: &b, bias: bias.as_ref(), output: &c })?;
        ctx.submit_and_read_one(OP, encoder, &c, spec.m * spec.n, scope).await
    }

    /// 1x1 convolution of a CHW input (`in_channels` x positions) with weights
    /// `out_channels x in_channels`; returns `out_channels` x positions.
    pub async fn pointwise(
        &self,
        ctx: &GpuContext,
        input: &[f32],
        in_channels: usize,
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
    ) -> Result<Vec<f32>, GpuError> {
        if in_channels == 0 || !input.len().is_multiple_of(in_channels) || !weight.len().is_multiple_of(in_channels) {
            return Err(GpuError::shape(
                "pointwise",
                format!("input of {} and weight of {} values do not hold whole rows of {in_channels} channels", input.len(), weight.len()),
            ));
        }
        let spec = MatmulSpec { m: weight.len() / in_channels, k: in_channels, n: input.len() / in_channels, activation };
        self.matmul(ctx, &spec, weight, input, bias).await
    }

    /// Records `output = a + b` over `len` values. Run it inside an error scope.
    pub fn encode_residual_add(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        output: &wgpu::Buffer,
        len: usize,
    ) -> Result<(), GpuError> {
        self.prepare_residual_add(ctx, a, b, output, len)?.encode(encoder);
        Ok(())
    }

    /// `output = a + b` made ready to record, as [`Self::encode_residual_add`].
    pub fn prepare_residual_add(
        &self,
        ctx: &GpuContext,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        output: &wgpu::Buffer,
        len: usize,
    ) -> Result<Dispatch, GpuError> {
        const OP: &str = "residual_add";
        check_size(OP, "a", a, len)?;
        check_size(OP, "b", b, len)?;
        check_size(OP, "output", output, len)?;
        let params = ctx.uniform("add params", &[to_u32(OP, "length", len)?]);
        let group = bind_group(&ctx.device, &self.add_layout, &[(20, a), (21, b), (22, output), (23, &params)]);
        let (x, y) = linear_groups(ctx, OP, len.div_ceil(ADD_GROUP))?;
        Ok(Dispatch::new(&self.add_pipeline, group, (x, y, 1)))
    }

    /// Elementwise `a + b`.
    pub async fn residual_add(&self, ctx: &GpuContext, a: &[f32], b: &[f32]) -> Result<Vec<f32>, GpuError> {
        const OP: &str = "residual_add";
        if a.len() != b.len() || a.is_empty() {
            return Err(GpuError::shape(OP, format!("cannot add {} values to {}", b.len(), a.len())));
        }
        let scope = ErrorScope::push(&ctx.device);
        let a_buf = ctx.storage(OP, "a", a)?;
        let b_buf = ctx.storage(OP, "b", b)?;
        let output = ctx.output(OP, "sum", a.len())?;
        let mut encoder = ctx.encoder(OP);
        self.encode_residual_add(ctx, &mut encoder, &a_buf, &b_buf, &output, a.len())?;
        ctx.submit_and_read_one(OP, encoder, &output, a.len(), scope).await
    }
}

/// Fails unless a host slice holds exactly the values the shape needs.
pub(crate) fn check_len(op: &'static str, what: &str, data: &[f32], expected: usize) -> Result<(), GpuError> {
    if data.len() != expected {
        return Err(GpuError::shape(op, format!("{what} has {} values, the shape needs {expected}", data.len())));
    }
    Ok(())
}

/// Fails unless a device buffer holds at least `values` 32-bit values.
pub(crate) fn check_size(op: &'static str, what: &str, buffer: &wgpu::Buffer, values: usize) -> Result<(), GpuError> {
    if buffer.size() < values as u64 * 4 {
        return Err(GpuError::shape(op, format!("{what} buffer holds {} bytes, the shape needs {}", buffer.size(), values * 4)));
    }
    Ok(())
}
