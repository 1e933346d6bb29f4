//! The backbone on the GPU: an executor built from the ONNX model itself.
//!
//! tract reads the file, fixes the input to 1x3xSxS, prunes it to the feature outputs
//! asked for and infers every shape; [`plan`] then walks that typed graph and turns it
//! into a short list of GPU steps:
//!
//! - `Conv` becomes a direct convolution (regular, grouped or depthwise; SAME or explicit
//!   padding) or, when it is 1x1 with stride 1, a tiled matrix product;
//! - a per-channel `Mul` or `Add` by a constant right after a convolution (an ONNX
//!   `BatchNormalization`, as tract writes it) is folded into its weights and bias;
//! - `Max` / `Min` by a constant after a convolution (ReLU, ReLU6, `Clip`) is fused into
//!   it as a clamp;
//! - `Add` of two feature maps of one shape is the residual add;
//! - anything computed from constants only is computed once, here.
//!
//! Any other op is a [`GpuError::Unsupported`] naming the node, so the caller keeps
//! the CPU path. Every step's buffers, parameters and bind groups are created once in
//! [`GpuNetwork::new`]; a frame writes the input and records the prepared dispatches.
//! Activation buffers are reused once their last reader has run, so the network needs
//! a few of its largest maps, not one buffer per layer.

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_core::ops::source::TypedSource;

use super::{Activation, Conv2dSpec, ConvOps, Dispatch, ErrorScope, GpuContext, GpuError, GpuFeatureMap, MatmulSpec, OpBuffers, Padding};
use crate::engine::backbone::typed_model;
use crate::engine::embed::FeatureMap;
use crate::engine::manifest::BackboneManifest;

const OP: &str = "network";

/// A C x H x W activation of the planned network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One GPU step of the planned network, reading and writing activations by index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Convolution with folded bias and fused activation. A 1x1, stride 1, ungrouped one
    /// runs as a matrix product.
    Conv { spec: Conv2dSpec, weight: Vec<f32>, bias: Vec<f32>, input: usize, output: usize },
    /// Elementwise sum of two activations of one shape.
    Add { a: usize, b: usize, output: usize },
}

impl Step {
    fn output(&self) -> usize {
        match self {
            Step::Conv { output, .. } | Step::Add { output, .. } => *output,
        }
    }

    fn inputs(&self) -> Vec<usize> {
        match self {
            Step::Conv { input, .. } => vec![*input],
            Step::Add { a, b, .. } => vec![*a, *b],
        }
    }
}

/// The network as GPU steps: activation 0 is the input image.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub activations: Vec<Shape>,
    pub steps: Vec<Step>,
    /// (name, activation) of each requested output, in the order asked for.
    pub outputs: Vec<(String, usize)>,
}

/// What a graph value is while planning.
#[derive(Clone)]
enum Value {
    Const(Arc<Tensor>),
    /// An activation, and the step producing it if a following op may still be folded
    /// into that step (it is read by nothing else and is not an output).
    Act {
        id: usize,
        foldable: Option<usize>,
    },
}

/// Builds the plan for `size` x `size` inputs from an ONNX file, returning `outputs`.
pub fn plan(manifest: &BackboneManifest, onnx: &[u8], size: u32, outputs: &[&str]) -> Result<Plan, GpuError> {
    let model = typed_model(manifest, onnx, size, outputs).map_err(|e| GpuError::shape(OP, e.to_string()))?;
    plan_typed(&model, outputs)
}

fn unsupported(node: &TypedNode, what: impl Into<String>) -> GpuError {
    GpuError::Unsupported { node: node.name.clone(), what: what.into() }
}

fn tract_error(node: &TypedNode, e: TractError) -> GpuError {
    GpuError::shape(OP, format!("node {}: {e:#}", node.name))
}

/// The values of a constant as f32.
fn floats(node: &TypedNode, tensor: &Tensor) -> Result<Vec<f32>, GpuError> {
    let cast = tensor.cast_to::<f32>().map_err(|e| tract_error(node, e))?;
    let view = cast.to_plain_array_view::<f32>().map_err(|e| tract_error(node, e))?;
    Ok(view.iter().copied().collect())
}

/// A 1xCxHxW (or CxHxW) shape from tract's inferred facts.
fn shape_of(node: &TypedNode, slot: usize) -> Result<Shape, GpuError> {
    let dims = node.outputs[slot].fact.shape.as_concrete().ok_or_else(|| unsupported(node, "an output whose shape is not fixed"))?;
    match dims {
        [1, c, h, w] | [c, h, w] => Ok(Shape { channels: *c, height: *h, width: *w }),
        other => Err(unsupported(node, format!("an output of shape {other:?} (feature maps are 1xCxHxW)"))),
    }
}

/// A constant that is one value per channel of a `channels`-channel feature map (or one
/// value for all): its per-channel values.
fn per_channel(node: &TypedNode, tensor: &Tensor, channels: usize) -> Result<Option<Vec<f32>>, GpuError> {
    let values = floats(node, tensor)?;
    if values.len() == 1 {
        return Ok(Some(vec![values[0]; channels]));
    }
    // Right-aligned against 1xCxHxW: C at the channel axis, 1 everywhere else.
    let shape = tensor.shape();
    let rank = shape.len();
    let fits = values.len() == channels
        && rank >= 3
        && shape[rank - 1] == 1
        && shape[rank - 2] == 1
        && shape[rank - 3] == channels
        && shape[..rank - 3].iter().all(|d| *d == 1);
    Ok(fits.then_some(values))
}

/// A constant holding a single value (however it is shaped).
fn scalar(node: &TypedNode, tensor: &Tensor) -> Result<Option<f32>, GpuError> {
    let values = floats(node, tensor)?;
    Ok((values.len() == 1).then(|| values[0]))
}

fn conv_step(node: &TypedNode, conv: &Conv, inputs: &[Value], shapes: &[Shape]) -> Result<Step, GpuError> {
    let (input, weight, bias) = match inputs {
        [Value::Act { id, .. }, Value::Const(w), Value::Const(b)] => (*id, w, Some(b)),
        [Value::Act { id, .. }, Value::Const(w)] => (*id, w, None),
        _ => return Err(unsupported(node, "a convolution whose weights are computed at run time")),
    };
    let pool = &conv.pool_spec;
    if conv.q_params.is_some() {
        return Err(unsupported(node, "a quantised convolution"));
    }
    if !matches!(pool.data_format, DataFormat::NCHW | DataFormat::CHW) || conv.kernel_fmt != KernelFormat::OIHW {
        return Err(unsupported(node, format!("a {:?} / {:?} convolution", pool.data_format, conv.kernel_fmt)));
    }
    if pool.kernel_shape.len() != 2 {
        return Err(unsupported(node, format!("a {}-D convolution", pool.kernel_shape.len())));
    }
    if pool.dilations.as_ref().is_some_and(|d| d.iter().any(|v| *v != 1)) {
        return Err(unsupported(node, "a dilated convolution"));
    }
    let strides = pool.strides.clone().unwrap_or_else(|| tvec![1, 1]);
    let pad = match &pool.padding {
        PaddingSpec::SameUpper => Padding::Same,
        PaddingSpec::Valid => Padding::Explicit { top: 0, left: 0, bottom: 0, right: 0 },
        PaddingSpec::Explicit(before, after) | PaddingSpec::ExplicitOnnxPool(before, after, false)
            if before.len() == 2 && after.len() == 2 =>
        {
            Padding::Explicit { top: before[0], left: before[1], bottom: after[0], right: after[1] }
        }
        other => return Err(unsupported(node, format!("a convolution padded {other:?}"))),
    };
    let x = shapes[input];
    let spec = Conv2dSpec {
        in_channels: x.channels,
        in_height: x.height,
        in_width: x.width,
        out_channels: pool.output_channels,
        kernel: (pool.kernel_shape[0], pool.kernel_shape[1]),
        stride: (strides[0], strides[1]),
        groups: conv.group,
        pad,
        activation: Activation::None,
    };
    let weight = floats(node, weight)?;
    if weight.len() != spec.weight_len() || pool.input_channels != x.channels {
        return Err(GpuError::shape(OP, format!("node {}: weights do not match {spec:?}", node.name)));
    }
    let bias = match bias {
        // ONNX gives a convolution's bias as one value per output channel.
        Some(b) if b.len() == spec.out_channels => floats(node, b)?,
        Some(b) => per_channel(node, b, spec.out_channels)?
            .ok_or_else(|| GpuError::shape(OP, format!("node {}: a bias of shape {:?}", node.name, b.shape())))?,
        None => vec![0.0; spec.out_channels],
    };
    // The shape tract inferred must be the one the kernel will write.
    let out = shape_of(node, 0)?;
    if (out.channels, out.height, out.width) != (spec.out_channels, spec.out_height(), spec.out_width()) {
        return Err(GpuError::shape(OP, format!("node {}: tract infers {out:?}, the kernel would write {spec:?}", node.name)));
    }
    Ok(Step::Conv { spec, weight, bias, input, output: usize::MAX })
}

/// Folds `op(act, constant)` into the step producing `act`, if it is a convolution that
/// nothing else reads; returns whether it did.
fn fold(step: &mut Step, op: &str, node: &TypedNode, constant: &Tensor) -> Result<bool, GpuError> {
    let Step::Conv { spec, weight, bias, .. } = step else { return Ok(false) };
    let affine_ok = spec.activation == Activation::None;
    match op {
        "Max" | "Min" => {
            let Some(c) = scalar(node, constant)? else { return Ok(false) };
            spec.activation =
                if op == "Max" { spec.activation.then_clamp(c, f32::INFINITY) } else { spec.activation.then_clamp(f32::NEG_INFINITY, c) };
            Ok(true)
        }
        "Add" | "Mul" if affine_ok => {
            let Some(values) = per_channel(node, constant, spec.out_channels)? else { return Ok(false) };
            if op == "Add" {
                bias.iter_mut().zip(&values).for_each(|(b, v)| *b += v);
            } else {
                let per_out = weight.len() / spec.out_channels;
                for (o, v) in values.iter().enumerate() {
                    weight[o * per_out..(o + 1) * per_out].iter_mut().for_each(|w| *w *= v);
                    bias[o] *= v;
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// [`plan`] on a typed model already pruned to `outputs`.
pub fn plan_typed(model: &TypedModel, outputs: &[&str]) -> Result<Plan, GpuError> {
    let order = model.eval_order().map_err(|e| GpuError::shape(OP, format!("{e:#}")))?;
    let model_outputs = model.output_outlets().map_err(|e| GpuError::shape(OP, format!("{e:#}")))?.to_vec();
    let mut values: HashMap<OutletId, Value> = HashMap::new();
    let mut activations: Vec<Shape> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    // Whether a node's output may have more ops folded into its producer.
    let foldable_out = |node: &TypedNode| {
        let outlet = OutletId::new(node.id, 0);
        node.outputs[0].successors.len() == 1 && !model_outputs.contains(&outlet)
    };

    for &id in &order {
        let node = model.node(id);
        let inputs: Vec<Value> = node
            .inputs
            .iter()
            .map(|i| values.get(i).cloned().ok_or_else(|| GpuError::shape(OP, format!("node {} reads an unknown value", node.name))))
            .collect::<Result<_, _>>()?;
        if node.outputs.len() != 1 {
            return Err(unsupported(node, format!("{} ({} outputs)", node.op.name(), node.outputs.len())));
        }
        let outlet = OutletId::new(id, 0);

        if node.op_as::<TypedSource>().is_some() {
            if !activations.is_empty() {
                return Err(unsupported(node, "a second input"));
            }
            activations.push(shape_of(node, 0)?);
            values.insert(outlet, Value::Act { id: 0, foldable: None });
            continue;
        }
        if let Some(konst) = node.op_as::<Const>() {
            values.insert(outlet, Value::Const(konst.val().clone()));
            continue;
        }
        if inputs.iter().all(|v| matches!(v, Value::Const(_))) {
            let consts: TVec<TValue> = inputs
                .iter()
                .map(|v| match v {
                    Value::Const(t) => t.clone().into_tvalue(),
                    Value::Act { .. } => unreachable!("all inputs are constants"),
                })
                .collect();
            let result = node.op.eval_out_of_plan(consts).map_err(|e| tract_error(node, e))?;
            let mut result = result.ok_or_else(|| unsupported(node, format!("{} on constants", node.op.name())))?;
            values.insert(outlet, Value::Const(result.remove(0).into_arc_tensor()));
            continue;
        }

        if let Some(conv) = node.op_as::<Conv>() {
            let mut step = conv_step(node, conv, &inputs, &activations)?;
            let out = shape_of(node, 0)?;
            activations.push(out);
            let act = activations.len() - 1;
            if let Step::Conv { output, .. } = &mut step {
                *output = act;
            }
            steps.push(step);
            let foldable = foldable_out(node).then_some(steps.len() - 1);
            values.insert(outlet, Value::Act { id: act, foldable });
            continue;
        }

        if let Some(bin) = node.op_as::<TypedBinOp>() {
            let op = bin.0.name();
            match (&inputs[0], &inputs[1]) {
                (Value::Act { id: a, .. }, Value::Act { id: b, .. }) if op == "Add" => {
                    if activations[*a] != activations[*b] {
                        return Err(unsupported(node, "an Add of feature maps of different shapes"));
                    }
                    activations.push(activations[*a]);
                    let act = activations.len() - 1;
                    steps.push(Step::Add { a: *a, b: *b, output: act });
                    let foldable = foldable_out(node).then_some(steps.len() - 1);
                    values.insert(outlet, Value::Act { id: act, foldable });
                    continue;
                }
                (Value::Act { id, foldable: Some(step) }, Value::Const(c)) | (Value::Const(c), Value::Act { id, foldable: Some(step) })
                    if fold(&mut steps[*step], op, node, c)? =>
                {
                    let foldable = foldable_out(node).then_some(*step);
                    values.insert(outlet, Value::Act { id: *id, foldable });
                    continue;
                }
                _ => {}
            }
            return Err(unsupported(node, format!("{op} here (only after a convolution that nothing else reads)")));
        }
        return Err(unsupported(node, node.op.name().to_string()));
    }

    let outputs = outputs
        .iter()
        .zip(&model_outputs)
        .map(|(name, outlet)| match values.get(outlet) {
            Some(Value::Act { id, .. }) => Ok((name.to_string(), *id)),
            _ => Err(GpuError::shape(OP, format!("output {name} is not a feature map"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if activations.is_empty() {
        return Err(GpuError::shape(OP, "the model has no input"));
    }
    Ok(Plan { activations, steps, outputs })
}

/// A planned network with its device buffers, ready to run frame after frame.
#[derive(Debug)]
pub struct GpuNetwork {
    input: wgpu::Buffer,
    input_len: usize,
    dispatches: Vec<Dispatch>,
    outputs: Vec<NetworkOutput>,
    /// Device memory held for weights and activations, in bytes.
    pub device_bytes: u64,
}

/// One requested feature map, kept on the device.
#[derive(Debug)]
pub struct NetworkOutput {
    pub name: String,
    pub shape: Shape,
    pub buffer: wgpu::Buffer,
}

impl GpuNetwork {
    /// Plans the model and creates every buffer, parameter block and bind group it needs.
    pub async fn new(
        ctx: &GpuContext,
        conv: &ConvOps,
        manifest: &BackboneManifest,
        onnx: &[u8],
        size: u32,
        outputs: &[&str],
    ) -> Result<Self, GpuError> {
        Self::from_plan(ctx, conv, &plan(manifest, onnx, size, outputs)?).await
    }

    pub async fn from_plan(ctx: &GpuContext, conv: &ConvOps, plan: &Plan) -> Result<Self, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let buffers = allocate(ctx, plan)?;
        let mut device_bytes: u64 = buffers.pool.iter().map(wgpu::Buffer::size).sum();
        let mut dispatches = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let output = &buffers.pool[buffers.of[step.output()]];
            let dispatch = match step {
                Step::Conv { spec, weight, bias, input, .. } => {
                    let input = &buffers.pool[buffers.of[*input]];
                    let weight = ctx.storage(OP, "weights", weight)?;
                    let bias = ctx.storage(OP, "bias", bias)?;
                    device_bytes += weight.size() + bias.size();
                    let pointwise = spec.kernel == (1, 1)
                        && spec.stride == (1, 1)
                        && spec.groups == 1
                        && spec.padding() == (0, 0)
                        && (spec.out_height(), spec.out_width()) == (spec.in_height, spec.in_width);
                    if pointwise {
                        // weight (out x in) times input (in x positions).
                        let mm = MatmulSpec {
                            m: spec.out_channels,
                            k: spec.in_channels,
                            n: spec.in_height * spec.in_width,
                            activation: spec.activation,
                        };
                        conv.prepare_matmul(ctx, &mm, OpBuffers { input: &weight, weight: input, bias: Some(&bias), output })?
                    } else {
                        conv.prepare_conv2d(ctx, spec, OpBuffers { input, weight: &weight, bias: Some(&bias), output })?
                    }
                }
                Step::Add { a, b, output: out } => conv.prepare_residual_add(
                    ctx,
                    &buffers.pool[buffers.of[*a]],
                    &buffers.pool[buffers.of[*b]],
                    output,
                    plan.activations[*out].len(),
                )?,
            };
            dispatches.push(dispatch);
        }
        let outputs = plan
            .outputs
            .iter()
            .map(|(name, act)| NetworkOutput {
                name: name.clone(),
                shape: plan.activations[*act],
                buffer: buffers.pool[buffers.of[*act]].clone(),
            })
            .collect();
        let network = GpuNetwork {
            input: buffers.pool[buffers.of[0]].clone(),
            input_len: plan.activations[0].len(),
            dispatches,
            outputs,
            device_bytes,
        };
        scope.finish(OP).await?;
        Ok(network)
    }

    /// Writes one CHW image into the input and records the whole network into `encoder`.
    /// Run it inside an error scope; the outputs are ready once the encoder is submitted.
    pub fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, chw: &[f32]) -> Result<(), GpuError> {
        if chw.len() != self.input_len {
            return Err(GpuError::shape(OP, format!("input has {} values, the network takes {}", chw.len(), self.input_len)));
        }
        ctx.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(chw));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(OP), timestamp_writes: None });
        for dispatch in &self.dispatches {
            dispatch.record(&mut pass);
        }
        Ok(())
    }

    /// The outputs, as the embedding reads them.
    pub fn feature_maps(&self) -> Vec<GpuFeatureMap<'_>> {
        self.outputs
            .iter()
            .map(|o| GpuFeatureMap {
                name: &o.name,
                channels: o.shape.channels,
                height: o.shape.height,
                width: o.shape.width,
                buffer: &o.buffer,
            })
            .collect()
    }

    /// Runs one CHW image and reads every output back (tests and diagnostics; a frame
    /// keeps them on the device).
    pub async fn run(&self, ctx: &GpuContext, chw: &[f32]) -> Result<Vec<FeatureMap>, GpuError> {
        let scope = ErrorScope::push(&ctx.device);
        let mut encoder = ctx.encoder(OP);
        self.encode(ctx, &mut encoder, chw)?;
        let reads: Vec<(&wgpu::Buffer, usize)> = self.outputs.iter().map(|o| (&o.buffer, o.shape.len())).collect();
        let data = ctx.submit_and_read::<f32>(OP, encoder, &reads, scope).await?;
        Ok(self
            .outputs
            .iter()
            .zip(data)
            .map(|(o, data)| FeatureMap {
                name: o.name.clone(),
                channels: o.shape.channels,
                height: o.shape.height,
                width: o.shape.width,
                data,
            })
            .collect())
    }
}

/// Device buffers for the activations: `pool[of[activation]]`.
struct Buffers {
    pool: Vec<wgpu::Buffer>,
    of: Vec<usize>,
}

/// Gives each activation a buffer, reusing one whose activations are all read by
/// the time it is written again. The input and the outputs keep theirs to themselves.
fn allocate(ctx: &GpuContext, plan: &Plan) -> Result<Buffers, GpuError> {
    let n = plan.activations.len();
    let mut last_read = vec![0usize; n];
    for (i, step) in plan.steps.iter().enumerate() {
        for input in step.inputs() {
            last_read[input] = i;
        }
    }
    let pinned: Vec<bool> = (0..n).map(|a| a == 0 || plan.outputs.iter().any(|(_, o)| *o == a)).collect();
    let mut sizes: Vec<usize> = Vec::new();
    let mut of = vec![usize::MAX; n];
    let mut free: Vec<usize> = Vec::new();
    let take = |len: usize, sizes: &mut Vec<usize>, free: &mut Vec<usize>| {
        // The smallest free buffer that fits, else a new one.
        let best = free.iter().enumerate().filter(|(_, b)| sizes[**b] >= len).min_by_key(|(_, b)| sizes[**b]).map(|(i, _)| i);
        match best {
            Some(i) => free.swap_remove(i),
            None => {
                sizes.push(len);
                sizes.len() - 1
            }
        }
    };
    of[0] = take(plan.activations[0].len(), &mut sizes, &mut free);
    for (i, step) in plan.steps.iter().enumerate() {
        let out = step.output();
        of[out] = take(plan.activations[out].len(), &mut sizes, &mut free);
        for input in step.inputs() {
            if last_read[input] == i && !pinned[input] && !free.contains(&of[input]) {
                free.push(of[input]);
            }
        }
    }
    let pool = sizes.iter().map(|len| ctx.output(OP, "activation", *len)).collect::<Result<_, _>>()?;
    Ok(Buffers { pool, of })
}
