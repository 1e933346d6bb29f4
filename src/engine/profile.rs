//! The profile file: one product's model, calibration and settings in one safetensors
//! file, so it can be exported, imported on another device and read by the CLI.
//!
//! Tensors: `projection` [in_dims, dims] (when projecting), then either `padim.mean`
//! [positions, dims] and `padim.inv_chol` [positions, dims*(dims+1)/2], or
//! `patchcore.bank` [bank, dims]; all f32. The safetensors metadata key `damagelens`
//! holds the JSON header: format, version, name, backbone identity, settings,
//! calibration. Reading treats the file as hostile: sizes are checked against the header
//! before anything is allocated, and it never panics.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::embed::{EmbedConfig, Embedder, PatchGrid};
use super::padim::PadimModel;
use super::patchcore::PatchCoreModel;
use super::postprocess::Calibration;
use super::EngineError;

pub const PROFILE_FORMAT: &str = "damagelens-profile";
pub const PROFILE_VERSION: u32 = 1;
/// Far above any real profile (PaDiM at 100 dims is about 16 MB).
pub const MAX_PROFILE_BYTES: usize = 512 * 1024 * 1024;
const MAX_GRID_SIDE: usize = 256;
const MAX_DIMS: usize = 4096;
const MAX_NAME_CHARS: usize = 200;
const FIX_EXPORT: &str = "Export it again from DamageLens, or train the product again";

/// Which backbone a profile's features come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneId {
    pub name: String,
    pub sha256: String,
    pub input_size: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyModel {
    Padim(PadimModel),
    PatchCore(PatchCoreModel),
}

impl AnomalyModel {
    pub fn score(&self, grid: &PatchGrid) -> Result<Vec<f32>, EngineError> {
        match self {
            AnomalyModel::Padim(m) => m.score(grid),
            AnomalyModel::PatchCore(m) => m.score(grid),
        }
    }

    pub fn method_name(&self) -> &'static str {
        match self {
            AnomalyModel::Padim(_) => "PaDiM",
            AnomalyModel::PatchCore(_) => "PatchCore",
        }
    }

    /// What scoring one image costs with this model on a `positions`-patch grid.
    pub fn cost(&self, positions: usize) -> ModelCost {
        let (bank_size, stored, per_patch) = match self {
            // One triangular solve per patch: d(d+1)/2 multiply-adds.
            AnomalyModel::Padim(m) => (None, m.mean.len() + m.inv_chol.len(), m.dims * (m.dims + 1) / 2),
            // One dot product with every bank entry per patch.
            AnomalyModel::PatchCore(m) => (Some(m.bank_size()), m.bank.len(), m.bank_size() * m.dims),
        };
        ModelCost { bank_size, model_bytes: stored * 4, multiply_adds_per_image: (positions * per_patch) as u64 }
    }
}

/// Size and search cost of a model, stated in the profile so a person can see what a
/// setting (a bigger coreset, more dimensions) costs on a tablet before using it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    /// PatchCore's memory bank entries (none for PaDiM).
    pub bank_size: Option<usize>,
    /// The model's numbers (f32) in bytes.
    pub model_bytes: usize,
    /// Multiply-adds to score one image's patches: PatchCore searches the whole bank
    /// (exact nearest neighbour), PaDiM does one triangular solve per patch.
    pub multiply_adds_per_image: u64,
}

/// A trained product: what good looks like, and where damage starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub backbone: BackboneId,
    pub embedder: Embedder,
    /// Patch grid the model was fitted on.
    pub grid: (usize, usize),
    pub model: AnomalyModel,
    pub calibration: Calibration,
    pub training_images: usize,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    name: String,
    backbone: BackboneId,
    embed: EmbedConfig,
    embed_in_dims: usize,
    method: String,
    grid: [usize; 2],
    dims: usize,
    calibration: Calibration,
    training_images: usize,
    /// Written for people reading the file; recomputed from the tensors on reading.
    cost: Option<ModelCost>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl Profile {
    pub fn to_bytes(&self) -> Result<Vec<u8>, EngineError> {
        let dims = self.embedder.out_dims();
        let header = Header {
            format: PROFILE_FORMAT.into(),
            version: PROFILE_VERSION,
            name: self.name.clone(),
            backbone: self.backbone.clone(),
            embed: self.embedder.config().clone(),
            embed_in_dims: self.embedder.in_dims(),
            method: self.model.method_name().to_lowercase(),
            grid: [self.grid.0, self.grid.1],
            dims,
            calibration: self.calibration.clone(),
            training_images: self.training_images,
            cost: Some(self.cost()),
        };
        let positions = self.grid.0 * self.grid.1;
        let mut tensors: Vec<(&str, Vec<usize>, Vec<u8>)> = Vec::new();
        if !self.embedder.projection().is_empty() {
            tensors.push(("projection", vec![self.embedder.in_dims(), dims], f32_bytes(self.embedder.projection())));
        }
        match &self.model {
            AnomalyModel::Padim(m) => {
                tensors.push(("padim.mean", vec![positions, dims], f32_bytes(&m.mean)));
                tensors.push(("padim.inv_chol", vec![positions, dims * (dims + 1) / 2], f32_bytes(&m.inv_chol)));
            }
            AnomalyModel::PatchCore(m) => tensors.push(("patchcore.bank", vec![m.bank_size(), dims], f32_bytes(&m.bank))),
        }
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(name, shape, data)| TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (*name, v)))
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::profile(&self.name, e, "This is a bug; please report it"))?;
        let json = serde_json::to_string(&header).map_err(|e| EngineError::profile(&self.name, e, "This is a bug"))?;
        let metadata = HashMap::from([("damagelens".to_string(), json)]);
        safetensors::serialize(views, Some(metadata)).map_err(|e| EngineError::profile(&self.name, e, "This is a bug"))
    }

    /// Reads and validates a profile file; `expected_backbone` is the sha256 of the model
    /// this app runs, when the profile must match it.
    pub fn from_bytes(file: &str, bytes: &[u8], expected_backbone: Option<&str>) -> Result<Profile, EngineError> {
        let bad = |reason: String| EngineError::profile(file, reason, FIX_EXPORT);
        if bytes.len() > MAX_PROFILE_BYTES {
            return Err(bad(format!("the file is {} MB, more than any profile", bytes.len() >> 20)));
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a DamageLens profile ({e})")))?;
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
        let json = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("damagelens"))
            .ok_or_else(|| bad("a safetensors file, but not a DamageLens profile".into()))?;
        let header: Header = serde_json::from_str(json).map_err(|e| bad(format!("damaged header ({e})")))?;
        if header.format != PROFILE_FORMAT {
            return Err(bad(format!("format {:?} is not {PROFILE_FORMAT}", header.format)));
        }
        if header.version != PROFILE_VERSION {
            return Err(EngineError::profile(
                file,
                format!("profile format version {} (this DamageLens reads version {PROFILE_VERSION})", header.version),
                "Update DamageLens, or export the profile from the same version",
            ));
        }
        if let Some(expected) = expected_backbone {
            if header.backbone.sha256 != expected {
                return Err(EngineError::profile(
                    file,
                    format!("it was built for another backbone ({} {})", header.backbone.name, short(&header.backbone.sha256)),
                    "Train the product again with this app's backbone",
                ));
            }
        }
        if header.name.chars().count() > MAX_NAME_CHARS {
            return Err(bad(format!("the product name is longer than {MAX_NAME_CHARS} characters")));
        }
        let [h, w] = header.grid;
        let d = header.dims;
        if !(1..=MAX_GRID_SIDE).contains(&h) || !(1..=MAX_GRID_SIDE).contains(&w) || !(1..=MAX_DIMS).contains(&d) {
            return Err(bad(format!("implausible sizes: grid {h}x{w}, {d} dims")));
        }
        if !(header.embed_in_dims >= 1 && header.embed_in_dims <= MAX_DIMS) {
            return Err(bad(format!("implausible feature size {}", header.embed_in_dims)));
        }
        let cal = &header.calibration;
        if ![cal.threshold, cal.min, cal.max].iter().all(|v| v.is_finite()) || cal.min > cal.max {
            return Err(bad("the calibration numbers are not valid".into()));
        }
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, EngineError> {
            let view = st.tensor(name).map_err(|_| bad(format!("tensor {name} is missing")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(bad(format!("tensor {name} is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape())));
            }
            let values: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad(format!("tensor {name} holds values that are not finite numbers")));
            }
            Ok(values)
        };
        let projection = match header.embed.dims {
            Some(pd) if pd == d => read("projection", &[header.embed_in_dims, d])?,
            None if header.embed_in_dims == d => Vec::new(),
            _ => return Err(bad("the embedding dimension does not match the model".into())),
        };
        let embedder = Embedder::from_parts(header.embed, header.embed_in_dims, projection)
            .map_err(|e| bad(e.to_string()))?;
        let positions = h * w;
        let model = match header.method.as_str() {
            "padim" => AnomalyModel::Padim(PadimModel {
                height: h,
                width: w,
                dims: d,
                mean: read("padim.mean", &[positions, d])?,
                inv_chol: read("padim.inv_chol", &[positions, d * (d + 1) / 2])?,
            }),
            "patchcore" => {
                let view = st.tensor("patchcore.bank").map_err(|_| bad("tensor patchcore.bank is missing".into()))?;
                let bank_size = view.shape().first().copied().unwrap_or(0);
                if bank_size == 0 {
                    return Err(bad("the PatchCore memory bank is empty".into()));
                }
                AnomalyModel::PatchCore(PatchCoreModel { dims: d, bank: read("patchcore.bank", &[bank_size, d])? })
            }
            other => return Err(bad(format!("unknown method {other:?}"))),
        };
        Ok(Profile {
            name: header.name,
            backbone: header.backbone,
            embedder,
            grid: (h, w),
            model,
            calibration: header.calibration,
            training_images: header.training_images,
        })
    }
}

impl Profile {
    pub fn cost(&self) -> ModelCost {
        self.model.cost(self.grid.0 * self.grid.1)
    }
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::embed::gaussian_projection;
    use proptest::prelude::*;

    fn profile(patchcore: bool) -> Profile {
        let embed = EmbedConfig { layers: vec!["feat_s8".into()], dims: Some(3), seed: 1, neighbourhood: 1 };
        let embedder = Embedder::from_parts(embed, 5, gaussian_projection(5, 3, 1)).unwrap();
        let model = if patchcore {
            AnomalyModel::PatchCore(PatchCoreModel { dims: 3, bank: vec![0.5; 12] })
        } else {
            AnomalyModel::Padim(PadimModel { height: 2, width: 1, dims: 3, mean: vec![0.25; 6], inv_chol: vec![1.0; 12] })
        };
        Profile {
            name: "Mug <b>".into(),
            backbone: BackboneId { name: "efficientnet_lite0".into(), sha256: "ab".repeat(32), input_size: 224 },
            embedder,
            grid: (2, 1),
            model,
            calibration: Calibration { threshold: 3.0, min: 1.0, max: 5.0, method: "manual".into() },
            training_images: 12,
        }
    }

    /// Replaces `from` by `to` (same length) in the header, keeping the binary layout.
    fn patched(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).expect("pattern is in the header");
        let mut out = bytes.to_vec();
        out[at..at + to.len()].copy_from_slice(to.as_bytes());
        out
    }

    #[test]
    fn round_trips_both_methods() {
        for patchcore in [false, true] {
            let p = profile(patchcore);
            let bytes = p.to_bytes().unwrap();
            assert_eq!(Profile::from_bytes("p", &bytes, Some(&"ab".repeat(32))).unwrap(), p);
        }
    }

    #[test]
    fn states_bank_size_and_search_cost() {
        let bytes = profile(true).to_bytes().unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let header: serde_json::Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["damagelens"]).unwrap();
        // 4 bank entries of 3 dims, searched by each of the 2 patches.
        assert_eq!(header["cost"], serde_json::json!({"bank_size": 4, "model_bytes": 48, "multiply_adds_per_image": 24}));
        let padim = profile(false).cost();
        assert_eq!((padim.bank_size, padim.model_bytes, padim.multiply_adds_per_image), (None, 72, 12));
    }

    #[test]
    fn refuses_another_backbone_and_another_version() {
        let bytes = profile(false).to_bytes().unwrap();
        let err = Profile::from_bytes("mug.dlprofile", &bytes, Some("cd")).unwrap_err().to_string();
        assert!(err.contains("mug.dlprofile") && err.contains("another backbone"), "{err}");
        // The header JSON is a string inside the safetensors JSON, so its quotes are escaped.
        let newer = patched(&bytes, r#"\"version\":1"#, r#"\"version\":9"#);
        let err = Profile::from_bytes("mug.dlprofile", &newer, None).unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
    }

    #[test]
    fn refuses_truncated_and_foreign_files() {
        let bytes = profile(false).to_bytes().unwrap();
        for cut in [0, 7, 8, 100, bytes.len() - 1] {
            let err = Profile::from_bytes("cut.dlprofile", &bytes[..cut], None).unwrap_err().to_string();
            assert!(err.contains("cut.dlprofile"), "{err}");
        }
        let foreign = safetensors::serialize(Vec::<(&str, TensorView)>::new(), None).unwrap();
        assert!(Profile::from_bytes("x", &foreign, None).unwrap_err().to_string().contains("not a DamageLens profile"));
    }

    #[test]
    fn refuses_absurd_sizes_in_the_header() {
        let bytes = profile(false).to_bytes().unwrap();
        let bigger = patched(&bytes, r#"\"grid\":[2,1]"#, r#"\"grid\":[9,9]"#);
        let err = Profile::from_bytes("h", &bigger, None).unwrap_err().to_string();
        assert!(err.contains("padim.mean") && err.contains("expected F32 [81, 3]"), "{err}");
        let absurd = patched(&bytes, r#"\"dims\":3,"#, r#"\"dims\":9999"#.get(..r#"\"dims\":3,"#.len()).unwrap());
        let err = Profile::from_bytes("h", &absurd, None).unwrap_err().to_string();
        assert!(err.contains("implausible sizes") || err.contains("damaged header"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn never_panics_on_flipped_bytes(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut bytes = profile(false).to_bytes().unwrap();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= value | 1;
            }
            let _ = Profile::from_bytes("fuzz", &bytes, None);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Profile::from_bytes("fuzz", &bytes, None);
        }
    }
}
