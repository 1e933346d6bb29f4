//! The profile file: one product's model, calibration and settings in one safetensors
//! file, so it can be exported, imported on another device and read by the CLI.
//!
//! A profile holds one detector (PaDiM or PatchCore) or an ensemble of them. Detector
//! `i`'s tensors are named `d{i}.projection` [in_dims, dims] (when projecting), then
//! either `d{i}.padim.mean` [positions, dims] and `d{i}.padim.inv_chol`
//! [positions, dims*(dims+1)/2], or `d{i}.patchcore.bank` [bank, dims]; all f32.
//! A profile may hold its product's identification gallery, `gallery` [photos, dims],
//! with its settings under `gallery` in the header (files without one still open).
//! (Version 1 files hold one detector, with the same names unprefixed.) The safetensors
//! metadata key `damagelens` holds the JSON header: format, version, name, backbone
//! identity, each detector's settings, calibration. Reading treats the file as hostile:
//! sizes are checked against the header before anything is allocated, and it never
//! panics.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::capture::CaptureReference;
use super::chooser::MethodReport;
use super::damage_head::DamageHead;
use super::embed::{EmbedConfig, Embedder, PatchGrid};
use super::identify::{Gallery, GalleryHeader, EMBEDDING_KIND, MAX_GALLERY};
use super::padim::PadimModel;
use super::patchcore::PatchCoreModel;
use super::postprocess::Calibration;
use super::EngineError;

pub const PROFILE_FORMAT: &str = "damagelens-profile";
pub const PROFILE_VERSION: u32 = 2;
/// Version 1 (one detector, unprefixed tensors) is still read.
const OLDEST_READABLE_VERSION: u32 = 1;
const MAX_DETECTORS: usize = 4;
/// Far above any real profile (PaDiM at 100 dims is about 16 MB).
pub const MAX_PROFILE_BYTES: usize = 512 * 1024 * 1024;
const MAX_GRID_SIDE: usize = 256;
const MAX_DIMS: usize = 4096;
const MAX_NAME_CHARS: usize = 200;
const GALLERY_TENSOR: &str = "gallery";
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

/// One way of scoring patches: its own patch embedding and the model fitted on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    pub embedder: Embedder,
    /// Patch grid the model was fitted on.
    pub grid: (usize, usize),
    pub model: AnomalyModel,
    /// Puts this detector's anomaly map on the ensemble's common scale.
    pub scale: MapScale,
}

/// `(value - mean) / std`: how an ensemble member's map values compare with those of
/// held-out good photos. Members speak different units (a Mahalanobis distance, a
/// nearest-neighbour distance); in these units they can be averaged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapScale {
    pub mean: f32,
    pub std: f32,
}

impl MapScale {
    /// A lone detector keeps its own units.
    pub const IDENTITY: MapScale = MapScale { mean: 0.0, std: 1.0 };

    pub fn apply(&self, value: f32) -> f32 {
        (value - self.mean) / self.std
    }

    /// The mean and spread of the image scores (map maxima) of held-out good photos:
    /// a member's map is then read as "how many spreads above a normal photo's worst
    /// spot", which is what decides a verdict.
    pub fn of(maps: &[super::postprocess::AnomalyMap]) -> MapScale {
        let scores: Vec<f64> = maps.iter().map(|m| f64::from(m.max())).collect();
        let n = scores.len().max(1) as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let var = scores.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        MapScale { mean: mean as f32, std: (var.sqrt() as f32).max(f32::MIN_POSITIVE) }
    }
}

/// A trained product: what good looks like, and where damage starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub backbone: BackboneId,
    /// One detector, or the members of an ensemble whose maps are averaged.
    pub detectors: Vec<Detector>,
    /// Photos' brightness is evened out before the backbone.
    pub even_brightness: bool,
    /// Hand-held copies learnt beside each training photo (`TrainSettings::augment`).
    pub augment: u32,
    /// The good photos' typical sharpness, brightness and glare, to refuse unfit shots.
    /// None in files written before capture checks.
    pub capture: Option<CaptureReference>,
    pub calibration: Calibration,
    pub training_images: usize,
    /// Good photos' global embeddings, to tell this product from others ("Auto").
    /// None in files written before identification, or from too few photos.
    pub gallery: Option<Gallery>,
    /// The library product and version this file was exported as; None for a profile
    /// fresh from training, and in files exported before versions.
    pub origin: Option<Origin>,
    /// Why the method was chosen, when it was chosen automatically.
    pub method: Option<MethodReport>,
    /// What damage looks like for this product, learnt from its damaged photos at
    /// calibration; None without any (`crate::engine::damage_head`).
    pub damage_head: Option<LearntHead>,
}

/// A damage head kept in a profile, fused into the map it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LearntHead {
    pub head: DamageHead,
    /// Thresholds a sure damaged patch lifts the map (`damage_head::fuse`).
    pub weight: f32,
    /// Damaged photos it learnt from.
    pub photos: usize,
}

#[derive(Serialize, Deserialize)]
struct HeadHeader {
    dims: usize,
    bias: f32,
    weight: f32,
    photos: usize,
}

/// Which product and version of a library a profile file is: importing it where that
/// product already is replaces it as a new version (asking first when the file's
/// version is older) instead of making a copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The product's id in the library it was exported from.
    pub product: String,
    pub version: u32,
    /// When the model was trained (ms since 1970).
    pub trained_ms: f64,
}

impl Origin {
    const MAX_ID_CHARS: usize = 64;

    fn is_valid(&self) -> bool {
        !self.product.is_empty()
            && self.product.len() <= Origin::MAX_ID_CHARS
            && self.product.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && self.version >= 1
            && self.trained_ms.is_finite()
    }
}

/// One detector's settings in the header.
#[derive(Serialize, Deserialize)]
struct DetectorHeader {
    method: String,
    embed: EmbedConfig,
    embed_in_dims: usize,
    grid: [usize; 2],
    dims: usize,
    scale: MapScale,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    name: String,
    backbone: BackboneId,
    #[serde(default)]
    detectors: Vec<DetectorHeader>,
    #[serde(default)]
    even_brightness: bool,
    /// Absent in files written before training could add hand-held copies.
    #[serde(default, skip_serializing_if = "is_zero")]
    augment: u32,
    /// Absent in files written before capture checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capture: Option<CaptureReference>,
    /// Version 1 kept its single detector's settings at the top level.
    #[serde(flatten, default, skip_serializing)]
    version_1: Option<Version1Detector>,
    calibration: Calibration,
    training_images: usize,
    /// Absent in files written before product identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gallery: Option<GalleryHeader>,
    /// Absent in files exported before versions, and in fresh trainings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<Origin>,
    /// Absent unless the method was chosen automatically (version 1 used `method` for
    /// its detector's method).
    #[serde(rename = "chosen_method", default, skip_serializing_if = "Option::is_none")]
    method: Option<MethodReport>,
    /// Absent without a damage head; its tensors are `head.mean`, `head.scale`, `head.weights`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    damage_head: Option<HeadHeader>,
    /// Written for people reading the file; recomputed from the tensors on reading.
    cost: Option<ModelCost>,
}

#[derive(Deserialize)]
struct Version1Detector {
    embed: EmbedConfig,
    embed_in_dims: usize,
    method: String,
    grid: [usize; 2],
    dims: usize,
}

/// A DamageLens safetensors file (a `kind` of file, for errors): its tensors, and its
/// JSON header from the metadata key `damagelens`.
pub(crate) fn read_safetensors<'a, H: serde::de::DeserializeOwned>(bytes: &'a [u8], kind: &str) -> Result<(SafeTensors<'a>, H), String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a DamageLens {kind} ({e})"))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| format!("unreadable header ({e})"))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("damagelens"))
        .ok_or_else(|| format!("a safetensors file, but not a DamageLens {kind}"))?;
    Ok((st, serde_json::from_str(json).map_err(|e| format!("damaged header ({e})"))?))
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Profile {
    pub fn to_bytes(&self) -> Result<Vec<u8>, EngineError> {
        let header = Header {
            format: PROFILE_FORMAT.into(),
            version: PROFILE_VERSION,
            name: self.name.clone(),
            backbone: self.backbone.clone(),
            detectors: self
                .detectors
                .iter()
                .map(|d| DetectorHeader {
                    method: d.model.method_name().to_lowercase(),
                    embed: d.embedder.config().clone(),
                    embed_in_dims: d.embedder.in_dims(),
                    grid: [d.grid.0, d.grid.1],
                    dims: d.embedder.out_dims(),
                    scale: d.scale,
                })
                .collect(),
            version_1: None,
            even_brightness: self.even_brightness,
            augment: self.augment,
            capture: self.capture,
            calibration: self.calibration.clone(),
            training_images: self.training_images,
            gallery: self.gallery.as_ref().map(Gallery::header),
            origin: self.origin.clone(),
            method: self.method.clone(),
            damage_head: self.damage_head.as_ref().map(|h| HeadHeader {
                dims: h.head.dims,
                bias: h.head.bias,
                weight: h.weight,
                photos: h.photos,
            }),
            cost: Some(self.cost()),
        };
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, d) in self.detectors.iter().enumerate() {
            let (positions, dims) = (d.grid.0 * d.grid.1, d.embedder.out_dims());
            let name = |t: &str| format!("d{i}.{t}");
            if !d.embedder.projection().is_empty() {
                tensors.push((name("projection"), vec![d.embedder.in_dims(), dims], f32_bytes(d.embedder.projection())));
            }
            match &d.model {
                AnomalyModel::Padim(m) => {
                    tensors.push((name("padim.mean"), vec![positions, dims], f32_bytes(&m.mean)));
                    tensors.push((name("padim.inv_chol"), vec![positions, dims * (dims + 1) / 2], f32_bytes(&m.inv_chol)));
                }
                AnomalyModel::PatchCore(m) => tensors.push((name("patchcore.bank"), vec![m.bank_size(), dims], f32_bytes(&m.bank))),
            }
        }
        if let Some(g) = &self.gallery {
            tensors.push((GALLERY_TENSOR.into(), vec![g.len(), g.dims], f32_bytes(&g.embeddings)));
        }
        if let Some(h) = &self.damage_head {
            for (name, values) in [("head.mean", &h.head.mean), ("head.scale", &h.head.scale), ("head.weights", &h.head.weights)] {
                tensors.push((name.into(), vec![h.head.dims], f32_bytes(values)));
            }
        }
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(name, shape, data)| TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (name.as_str(), v)))
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
        let (st, header): (_, Header) = read_safetensors(bytes, "profile").map_err(bad)?;
        if header.format != PROFILE_FORMAT {
            return Err(bad(format!("format {:?} is not {PROFILE_FORMAT}", header.format)));
        }
        if !(OLDEST_READABLE_VERSION..=PROFILE_VERSION).contains(&header.version) {
            return Err(EngineError::profile(
                file,
                format!("profile format version {} (this DamageLens reads version {PROFILE_VERSION})", header.version),
                "Update DamageLens, or export the profile from the same version",
            ));
        }
        if let Some(expected) = expected_backbone {
            if header.backbone.sha256 != expected {
                return Err(EngineError::OtherBackbone {
                    file: file.to_string(),
                    found: format!("{} {}", header.backbone.name, short(&header.backbone.sha256)),
                });
            }
        }
        if header.name.chars().count() > MAX_NAME_CHARS {
            return Err(bad(format!("the product name is longer than {MAX_NAME_CHARS} characters")));
        }
        let cal = &header.calibration;
        let check_valid = cal.check.as_ref().is_none_or(|c| c.from.is_finite() && c.from <= cal.threshold)
            && cal.expected_flagged.is_none_or(|f| (0.0..=1.0).contains(&f));
        if header.origin.as_ref().is_some_and(|o| !o.is_valid()) {
            return Err(bad("the product and version it was exported as are not valid".into()));
        }
        if header.method.as_ref().is_some_and(|m| !m.is_valid()) {
            return Err(bad("the reason its method was chosen is not valid".into()));
        }
        if header.capture.is_some_and(|c| !c.is_valid()) {
            return Err(bad("the capture reference (sharpness, brightness, glare) is not valid".into()));
        }
        if ![cal.threshold, cal.min, cal.max].iter().all(|v| v.is_finite()) || cal.min > cal.max || !check_valid {
            return Err(bad("the calibration numbers are not valid".into()));
        }
        let (detectors, prefix): (Vec<DetectorHeader>, fn(usize) -> String) = match (header.version, header.version_1) {
            (1, Some(d)) => (
                vec![DetectorHeader {
                    method: d.method,
                    embed: d.embed,
                    embed_in_dims: d.embed_in_dims,
                    grid: d.grid,
                    dims: d.dims,
                    scale: MapScale::IDENTITY,
                }],
                |_| String::new(),
            ),
            (1, None) => return Err(bad("damaged header (no detector settings)".into())),
            _ => (header.detectors, |i| format!("d{i}.")),
        };
        if !(1..=MAX_DETECTORS).contains(&detectors.len()) {
            return Err(bad(format!("{} detectors; a profile has 1 to {MAX_DETECTORS}", detectors.len())));
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
        let detectors = detectors
            .into_iter()
            .enumerate()
            .map(|(i, header)| {
                let name = |t: &str| format!("{}{t}", prefix(i));
                let [h, w] = header.grid;
                let d = header.dims;
                if !(1..=MAX_GRID_SIDE).contains(&h) || !(1..=MAX_GRID_SIDE).contains(&w) || !(1..=MAX_DIMS).contains(&d) {
                    return Err(bad(format!("implausible sizes: grid {h}x{w}, {d} dims")));
                }
                if !(header.embed_in_dims >= 1 && header.embed_in_dims <= MAX_DIMS) {
                    return Err(bad(format!("implausible feature size {}", header.embed_in_dims)));
                }
                let MapScale { mean, std } = header.scale;
                if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                    return Err(bad("a detector's score scale is not valid".into()));
                }
                let projection = match header.embed.dims {
                    Some(pd) if pd == d => read(&name("projection"), &[header.embed_in_dims, d])?,
                    None if header.embed_in_dims == d => Vec::new(),
                    _ => return Err(bad("the embedding dimension does not match the model".into())),
                };
                let embedder = Embedder::from_parts(header.embed, header.embed_in_dims, projection).map_err(|e| bad(e.to_string()))?;
                let positions = h * w;
                let model = match header.method.as_str() {
                    "padim" => AnomalyModel::Padim(PadimModel {
                        height: h,
                        width: w,
                        dims: d,
                        mean: read(&name("padim.mean"), &[positions, d])?,
                        inv_chol: read(&name("padim.inv_chol"), &[positions, d * (d + 1) / 2])?,
                    }),
                    "patchcore" => {
                        let bank = name("patchcore.bank");
                        let view = st.tensor(&bank).map_err(|_| bad(format!("tensor {bank} is missing")))?;
                        let bank_size = view.shape().first().copied().unwrap_or(0);
                        if bank_size == 0 {
                            return Err(bad("the PatchCore memory bank is empty".into()));
                        }
                        AnomalyModel::PatchCore(PatchCoreModel { dims: d, bank: read(&bank, &[bank_size, d])? })
                    }
                    other => return Err(bad(format!("unknown method {other:?}"))),
                };
                Ok(Detector { embedder, grid: (h, w), model, scale: header.scale })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let gallery = match &header.gallery {
            // A gallery made another way (a later version) is passed over: the product
            // still inspects, it is just not recognised until trained again.
            Some(g) if g.embedding == EMBEDDING_KIND => {
                // Sizes are checked before the tensor is read against them.
                if !(1..=MAX_GALLERY).contains(&g.size) || !(1..=MAX_DIMS).contains(&g.dims) {
                    return Err(bad(format!("implausible gallery sizes: {} photos of {} dims", g.size, g.dims)));
                }
                Gallery::from_parts(g, read(GALLERY_TENSOR, &[g.size, g.dims])?).map_err(bad)?
            }
            _ => None,
        };
        let damage_head = match &header.damage_head {
            None => None,
            Some(h) => {
                let dims = detectors[0].embedder.out_dims();
                let photos_ok = (1..=1_000_000).contains(&h.photos);
                if !(h.dims == dims && h.bias.is_finite() && h.weight > 0.0 && h.weight <= 10.0 && photos_ok) {
                    return Err(bad("its damage head does not fit its model".into()));
                }
                let head = DamageHead {
                    dims,
                    mean: read("head.mean", &[dims])?,
                    scale: read("head.scale", &[dims])?,
                    weights: read("head.weights", &[dims])?,
                    bias: h.bias,
                };
                if head.scale.iter().any(|s| *s <= 0.0) {
                    return Err(bad("its damage head does not fit its model".into()));
                }
                Some(LearntHead { head, weight: h.weight, photos: h.photos })
            }
        };
        Ok(Profile {
            damage_head,
            name: header.name,
            backbone: header.backbone,
            detectors,
            even_brightness: header.even_brightness,
            augment: header.augment,
            capture: header.capture,
            calibration: header.calibration,
            training_images: header.training_images,
            gallery,
            origin: header.origin,
            method: header.method,
        })
    }
}

impl Profile {
    /// What scoring one image costs, all detectors together.
    pub fn cost(&self) -> ModelCost {
        self.detectors.iter().map(|d| d.model.cost(d.grid.0 * d.grid.1)).fold(
            ModelCost { bank_size: None, model_bytes: 0, multiply_adds_per_image: 0 },
            |sum, c| ModelCost {
                bank_size: match (sum.bank_size, c.bank_size) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                },
                model_bytes: sum.model_bytes + c.model_bytes,
                multiply_adds_per_image: sum.multiply_adds_per_image + c.multiply_adds_per_image,
            },
        )
    }

    /// "PaDiM", "PatchCore", or "PaDiM + PatchCore" for an ensemble.
    pub fn method_name(&self) -> String {
        self.detectors.iter().map(|d| d.model.method_name()).collect::<Vec<_>>().join(" + ")
    }
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::embed::gaussian_projection;
    use crate::engine::postprocess::CheckBand;
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
            detectors: vec![Detector { embedder, grid: (2, 1), model, scale: MapScale::IDENTITY }],
            even_brightness: false,
            augment: 0,
            capture: Some(CaptureReference { sharpness: 0.5, brightness: 120.0, glare: 0.01 }),
            calibration: Calibration {
                threshold: 3.0,
                min: 1.0,
                max: 5.0,
                method: "manual".into(),
                check: Some(CheckBand { from: 2.0, why: "test".into() }),
                expected_flagged: Some(0.07),
            },
            training_images: 12,
            gallery: None,
            origin: Some(Origin { product: "p18f2a9c3d".into(), version: 3, trained_ms: 1.7e12 }),
            method: None,
            damage_head: None,
        }
    }

    fn with_gallery(mut p: Profile) -> Profile {
        p.gallery = Some(Gallery { dims: 2, embeddings: vec![0.6, 0.8, 1.0, 0.0, 0.0, 1.0], bound: 0.25 });
        p
    }

    /// PaDiM and PatchCore together, each with its own embedding and scale.
    fn ensemble() -> Profile {
        let mut p = profile(false);
        let mut member = profile(true).detectors.remove(0);
        member.embedder =
            Embedder::from_parts(EmbedConfig { layers: vec!["feat_s16".into()], dims: None, seed: 1, neighbourhood: 3 }, 3, Vec::new())
                .unwrap();
        member.scale = MapScale { mean: 0.5, std: 2.0 };
        p.detectors[0].scale = MapScale { mean: 1.5, std: 0.25 };
        p.detectors.push(member);
        p.even_brightness = true;
        p
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
    fn round_trips_both_methods_and_their_ensemble() {
        for p in [profile(false), profile(true), ensemble(), with_gallery(ensemble())] {
            let bytes = p.to_bytes().unwrap();
            assert_eq!(Profile::from_bytes("p", &bytes, Some(&"ab".repeat(32))).unwrap(), p);
        }
        assert_eq!(ensemble().method_name(), "PaDiM + PatchCore");
        let cost = ensemble().cost();
        assert_eq!((cost.bank_size, cost.model_bytes, cost.multiply_adds_per_image), (Some(4), 72 + 48, 12 + 24));
    }

    /// The app retrains ("mark as good") the way a profile was trained.
    #[test]
    fn a_profile_tells_the_choice_it_was_trained_with() {
        use crate::protocol::{MethodChoice, TrainChoice};
        let choice = |p: &Profile| TrainChoice::of(p);
        assert_eq!(choice(&profile(false)), TrainChoice { method: MethodChoice::Padim, even_brightness: false, augment: 0 });
        assert_eq!(choice(&profile(true)).method, MethodChoice::PatchCore);
        assert_eq!(choice(&ensemble()), TrainChoice { method: MethodChoice::Ensemble, even_brightness: true, augment: 0 });
        let settings = choice(&ensemble()).settings();
        assert_eq!((settings.detectors.len(), settings.even_brightness), (2, true));
        // A method chosen automatically is chosen again, among all candidates.
        use crate::engine::chooser::{report, Candidate};
        let chosen = Profile { method: Some(report(&[(Candidate::Padim, Some(0.9))], Candidate::Padim, 3, 1)), ..profile(false) };
        assert_eq!(choice(&chosen).method, MethodChoice::Automatic);
        assert!(choice(&chosen).settings().choose);
    }

    /// Files written before ensembles (version 1: one detector, unprefixed tensors)
    /// still open, so nothing saved in a library is lost.
    #[test]
    fn reads_version_1_files() {
        // Version 1 came before capture checks: such files have no capture reference.
        let p = Profile { capture: None, origin: None, ..profile(false) };
        let d = &p.detectors[0];
        let header = serde_json::json!({
            "format": PROFILE_FORMAT, "version": 1, "name": p.name, "backbone": p.backbone,
            "embed": d.embedder.config(), "embed_in_dims": 5, "method": "padim", "grid": [2, 1], "dims": 3,
            "calibration": p.calibration, "training_images": 12, "cost": null,
        });
        let AnomalyModel::Padim(m) = &d.model else { unreachable!() };
        let tensors = [
            ("projection", vec![5, 3], f32_bytes(d.embedder.projection())),
            ("padim.mean", vec![2, 3], f32_bytes(&m.mean)),
            ("padim.inv_chol", vec![2, 6], f32_bytes(&m.inv_chol)),
        ];
        let views: Vec<(&str, TensorView)> =
            tensors.iter().map(|(n, shape, data)| (*n, TensorView::new(Dtype::F32, shape.clone(), data).unwrap())).collect();
        let bytes = safetensors::serialize(views, Some(HashMap::from([("damagelens".to_string(), header.to_string())]))).unwrap();
        assert_eq!(Profile::from_bytes("old.dlprofile", &bytes, None).unwrap(), p);
    }

    /// Galleries are checked like the other tensors; one made by another embedding is
    /// passed over, and the product still opens.
    #[test]
    fn refuses_damaged_galleries_and_passes_over_other_kinds() {
        let bytes = with_gallery(profile(false)).to_bytes().unwrap();
        let open = |b: &[u8]| Profile::from_bytes("g.dlprofile", b, None);
        let wider = patched(&bytes, r#"\"size\":3"#, r#"\"size\":2"#);
        assert!(open(&wider).unwrap_err().to_string().contains("tensor gallery"), "{:?}", open(&wider));
        let huge = patched(&bytes, r#"\"size\":3"#, r#"\"size\":9"#);
        assert!(open(&huge).unwrap_err().to_string().contains("tensor gallery"));
        let far = patched(&bytes, r#"\"bound\":0.25"#, r#"\"bound\":9.25"#);
        assert!(open(&far).unwrap_err().to_string().contains("bound"));
        let nan = f32_bytes(&[0.6]);
        let at = bytes.windows(4).rposition(|w| w == nan.as_slice()).unwrap();
        let mut broken = bytes.clone();
        broken[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(open(&broken).unwrap_err().to_string().contains("not finite"), "{:?}", open(&broken));
        let other = patched(&bytes, r#"\"embedding\":\"mean"#, r#"\"embedding\":\"xean"#);
        assert_eq!(open(&other).unwrap(), profile(false));
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
        let newer = patched(&bytes, r#"\"version\":2"#, r#"\"version\":9"#);
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
    fn refuses_a_check_band_above_the_threshold_and_reads_files_without_one() {
        let bytes = profile(false).to_bytes().unwrap();
        let above = patched(&bytes, r#"\"from\":2.0"#, r#"\"from\":4.0"#);
        let err = Profile::from_bytes("b.dlprofile", &above, None).unwrap_err().to_string();
        assert!(err.contains("b.dlprofile") && err.contains("calibration numbers"), "{err}");
        let share = patched(&bytes, r#"\"expected_flagged\":0.07"#, r#"\"expected_flagged\":7.00"#);
        assert!(Profile::from_bytes("s", &share, None).unwrap_err().to_string().contains("calibration numbers"));
        let mut older = profile(false);
        older.calibration.check = None;
        let reread = Profile::from_bytes("o", &older.to_bytes().unwrap(), None).unwrap();
        assert_eq!(reread.calibration.band(2.5), crate::engine::postprocess::Band::Ok);
    }

    #[test]
    fn keeps_the_version_it_was_exported_as_and_refuses_a_forged_one() {
        let bytes = profile(false).to_bytes().unwrap();
        let origin = Profile::from_bytes("v", &bytes, None).unwrap().origin.unwrap();
        assert_eq!((origin.product.as_str(), origin.version), ("p18f2a9c3d", 3));
        for (from, to) in [(r#"\"version\":3"#, r#"\"version\":0"#), (r#"p18f2a9c3d"#, r#"p18f/../xy"#)] {
            let forged = patched(&bytes, from, to);
            let err = Profile::from_bytes("f.dlprofile", &forged, None).unwrap_err().to_string();
            assert!(err.contains("f.dlprofile") && err.contains("exported as"), "{err}");
        }
        let fresh = Profile { origin: None, ..profile(false) };
        assert_eq!(Profile::from_bytes("n", &fresh.to_bytes().unwrap(), None).unwrap().origin, None);
    }

    #[test]
    fn keeps_why_its_method_was_chosen_and_refuses_a_forged_reason() {
        use crate::engine::chooser::{report, Candidate};
        let chosen = Profile {
            method: Some(report(&[(Candidate::Padim, Some(0.75)), (Candidate::PatchCore, Some(0.9))], Candidate::PatchCore, 30, 10)),
            ..profile(true)
        };
        let bytes = chosen.to_bytes().unwrap();
        assert_eq!(Profile::from_bytes("m", &bytes, None).unwrap(), chosen);
        let forged = patched(&bytes, r#"\"chosen\":\"PatchCore\""#, r#"\"chosen\":\"Patch<i>X\""#);
        let err = Profile::from_bytes("m.dlprofile", &forged, None).unwrap_err().to_string();
        assert!(err.contains("m.dlprofile") && err.contains("method was chosen"), "{err}");
    }

    #[test]
    fn keeps_its_damage_head_and_refuses_one_that_does_not_fit() {
        let mut p = profile(false);
        let head = DamageHead { dims: 3, mean: vec![0.0; 3], scale: vec![1.0, 2.0, 0.5], weights: vec![1.0, 0.0, -1.0], bias: 0.25 };
        p.damage_head = Some(LearntHead { head, weight: 0.5, photos: 4 });
        let bytes = p.to_bytes().unwrap();
        assert_eq!(Profile::from_bytes("mug.dlprofile", &bytes, None).unwrap(), p);
        let error = Profile::from_bytes("mug.dlprofile", &patched(&bytes, r#"\"photos\":4"#, r#"\"photos\":0"#), None).unwrap_err();
        assert!(error.to_string().contains("damage head does not fit"), "{error}");
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
