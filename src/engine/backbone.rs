//! The pretrained CNN, run on the CPU by tract.
//!
//! Loading is apart from running: the ONNX bytes become an optimised plan once,
//! pruned to the outputs asked for (feature maps only, so inspection does not pay for
//! the classifier head).

use std::io::Cursor;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::embed::FeatureMap;
use super::manifest::BackboneManifest;
use super::EngineError;

#[derive(Clone)]
pub struct Backbone {
    plan: Arc<TypedRunnableModel>,
    outputs: Vec<String>,
    size: u32,
}

/// The ONNX model as tract types it, for a 1x3xSxS input and pruned to `outputs`: the
/// graph both the CPU plan and the GPU executor are built from.
pub fn typed_model(manifest: &BackboneManifest, onnx: &[u8], size: u32, outputs: &[&str]) -> Result<TypedModel, EngineError> {
    let file = manifest.file.as_str();
    let err = |e: TractError| EngineError::model(file, format!("{e:#}"));
    let model = tract_onnx::onnx().model_for_read(&mut Cursor::new(onnx)).map_err(err)?;
    // The input fact below would silently replace whatever the file declares, so a
    // model made for other inputs would run on nonsense instead of failing.
    let declared = model.input_fact(0).map_err(err)?;
    if let Some(rank) = declared.shape.rank().concretize() {
        if rank != 4 {
            return Err(EngineError::model(
                file,
                format!("its input has {rank} dimensions; DamageLens feeds one image as 1x3xHxW (4 dimensions)"),
            ));
        }
    }
    model
        .with_input_fact(0, f32::fact([1, 3, size as usize, size as usize]).into())
        .map_err(err)?
        .with_outputs_by_name(outputs)
        .map_err(err)?
        .into_typed()
        .map_err(err)
}

impl Backbone {
    /// Builds a plan that returns `outputs` (names from the ONNX graph) for a 1x3xSxS input.
    pub fn load(manifest: &BackboneManifest, onnx: &[u8], size: u32, outputs: &[&str]) -> Result<Self, EngineError> {
        let err = |e: TractError| EngineError::model(&manifest.file, format!("{e:#}"));
        let plan = typed_model(manifest, onnx, size, outputs)?.into_optimized().map_err(err)?.into_runnable().map_err(err)?;
        Ok(Backbone { plan, outputs: outputs.iter().map(|s| s.to_string()).collect(), size })
    }

    /// Runs the network on one preprocessed CHW tensor; returns the outputs in the order asked for.
    pub fn run(&self, chw: Vec<f32>) -> Result<Vec<FeatureMap>, EngineError> {
        let s = self.size as usize;
        let input = Tensor::from_shape(&[1, 3, s, s], &chw).map_err(|e| EngineError::model("input", format!("{e:#}")))?;
        let results = self.plan.run(tvec!(input.into_tvalue())).map_err(|e| EngineError::model("backbone", format!("{e:#}")))?;
        results
            .iter()
            .zip(&self.outputs)
            .map(|(t, name)| {
                let view = t.to_plain_array_view::<f32>().map_err(|e| EngineError::model("backbone", format!("{e:#}")))?;
                let shape = view.shape();
                let (c, h, w) = match shape {
                    [1, c, h, w] => (*c, *h, *w),
                    [1, c] => (*c, 1, 1),
                    other => return Err(EngineError::model("backbone", format!("unexpected output shape {other:?}"))),
                };
                Ok(FeatureMap { name: name.clone(), channels: c, height: h, width: w, data: view.iter().copied().collect() })
            })
            .collect()
    }
}
