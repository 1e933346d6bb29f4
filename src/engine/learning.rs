//! What training has learnt, kept so that a product goes on learning.
//!
//! A [`Fit`] is what a detector is fitted from while photos come in: PaDiM's running
//! sums (mean and centred comoment, in f64) or all of PatchCore's training patches (its
//! coreset is chosen at the end). A [`Learning`] is a trainer's whole state just before
//! it finished: every member's fit and held-out grids, the photos counted so far, their
//! capture measures and global embeddings, and the first photos of a product of few.
//! Resuming a trainer from it and adding photos gives exactly the profile that training
//! on all the photos in the same order would (`Trainer::resume`): the backbone runs on
//! the new photos only.
//!
//! The file is a safetensors file with a JSON header under the metadata key
//! `damagelens`; it names the profile it belongs to by a digest of the profile's
//! models, so a state kept for one version of a product is never applied to another
//! (a roll back, an import). Reading treats it as hostile, like a profile: sizes are
//! checked against the header before anything is read, values must be finite, and the
//! counts must agree with each other.

use std::collections::HashMap;

use image::RgbImage;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::capture::CaptureStats;
use super::embed::PatchGrid;
use super::identify::GlobalEmbedding;
use super::padim::PadimAccumulator;
use super::patchcore::PatchCoreModel;
use super::profile::{read_safetensors, AnomalyModel, Detector};
use super::EngineError;

pub const LEARNING_FORMAT: &str = "damagelens-learning";
pub const LEARNING_VERSION: u32 = 1;
/// Far above a real state (PaDiM at 100 dims on a 28x28 grid: 32 MB; PatchCore keeps
/// 313 KB of patches per learnt photo or copy), below what a browser can hold.
pub const MAX_LEARNING_BYTES: usize = 1 << 30;
const MAX_GRID_SIDE: usize = 256;
const MAX_DIMS: usize = 4096;
const MAX_PHOTO_SIDE: u32 = 4096;
const MAX_NAME_CHARS: usize = 1000;
/// A photo and its hand-held copies: far above any setting.
const MAX_COPIES_PER_PHOTO: usize = 1024;

/// With fewer photos than [`super::settings::HELD_OUT_FROM`], PaDiM's per-position
/// covariances are drawn towards the covariance pooled over all positions, as if this
/// many more photos had shown it ([`PadimAccumulator::finish_with_prior`]).
pub const PADIM_PRIOR_IMAGES: f64 = 4.0;
/// PaDiM adds this share of the features' mean variance to each position's covariance
/// diagonal, so the regularisation follows the features' scale, not their units. An
/// absolute 0.01 (0.04% of the tire's mean variance of 26) left near-singular
/// covariances at the still border of a moving item, which swamped its map (tire pixel
/// AUROC 0.575). Measured with `damagelens eval --method padim` (image AUROC / pixel
/// AUROC on the tire; image AUROC on ELPV mono, aligned and hand-held):
/// share 0.0004: tire 0.782 / 0.577, hand-held 0.605 / 0.821, ELPV 0.883, hand-held 0.807;
/// share 0.005:  tire 0.786 / 0.747, hand-held 0.615 / 0.874, ELPV 0.883, hand-held 0.799;
/// share 0.04:   tire 0.758 / 0.882, hand-held 0.614 / 0.910, ELPV 0.882, hand-held 0.784;
/// share 0.4:    tire 0.747 / 0.949, hand-held 0.606 / 0.930, ELPV 0.874, hand-held 0.753.
/// More regularisation localises better and ranks photos worse; 0.005 is the largest
/// share that lowers no aligned image AUROC.
pub const PADIM_REGULARISATION: f64 = 0.005;

/// What one detector is being fitted from.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    Padim(Option<PadimAccumulator>),
    /// All training patches, n x dims; the coreset is chosen at the end.
    PatchCore {
        ratio: f32,
        patches: Vec<f32>,
    },
}

impl Fit {
    pub fn add(&mut self, grid: &PatchGrid) -> Result<(), EngineError> {
        match self {
            Fit::Padim(acc) => acc.get_or_insert_with(|| PadimAccumulator::new(grid.height, grid.width, grid.dims)).add(grid),
            Fit::PatchCore { patches, .. } => {
                patches.extend_from_slice(&grid.data);
                Ok(())
            }
        }
    }

    /// The fitted model; `few`: too few photos for per-position Gaussians of their own,
    /// so PaDiM draws them towards the pooled one ([`PADIM_PRIOR_IMAGES`]).
    pub fn model(&self, dims: usize, seed: u64, few: bool) -> Result<AnomalyModel, EngineError> {
        let prior = if few { PADIM_PRIOR_IMAGES } else { 0.0 };
        match self {
            Fit::Padim(acc) => {
                let acc = acc.as_ref().ok_or(EngineError::NothingLearnt)?;
                Ok(AnomalyModel::Padim(acc.finish_with_prior(PADIM_REGULARISATION * acc.mean_variance(), prior)?))
            }
            Fit::PatchCore { ratio, patches } => Ok(AnomalyModel::PatchCore(PatchCoreModel::fit(patches, dims, *ratio, seed)?)),
        }
    }

    /// Whether it fits the same kind of model as `model`.
    pub fn fits(&self, model: &AnomalyModel) -> bool {
        matches!((self, model), (Fit::Padim(_), AnomalyModel::Padim(_)) | (Fit::PatchCore { .. }, AnomalyModel::PatchCore(_)))
    }
}

/// One detector's part of a [`Learning`].
#[derive(Debug, Clone, PartialEq)]
pub struct LearntMember {
    /// Fitted from the learnt photos (and their hand-held copies), not the held-out ones.
    pub fit: Fit,
    /// The held-out photos' patch grids, each of `grid` positions x `dims`.
    pub holdout: Vec<PatchGrid>,
    pub grid: (usize, usize),
    pub dims: usize,
}

/// One of the first photos of a product, kept until enough have come to hold some out.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyPhoto {
    pub file: String,
    /// What seeds its hand-held copies.
    pub key: String,
    /// Resized to the backbone's input.
    pub image: RgbImage,
}

/// A trainer's state just before it finished ([`crate::engine::inspector::Trainer`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Learning {
    pub members: Vec<LearntMember>,
    /// Photos counted so far (learnt and held out).
    pub seen: usize,
    pub captures: Vec<CaptureStats>,
    pub photos: Vec<GlobalEmbedding>,
    pub early: Vec<EarlyPhoto>,
    /// The backbone the features came from.
    pub backbone_sha256: String,
    /// [`models_digest`] of the profile this state finished as.
    pub models_sha256: String,
}

/// A digest of what a profile's detectors score with (their grids, projections and
/// models): the same for the same model whatever its calibration or name.
pub fn models_digest(detectors: &[Detector]) -> String {
    let mut hash = sha2::Sha256::new();
    let mut floats = |values: &[f32]| values.iter().for_each(|v| hash.update(v.to_le_bytes()));
    for d in detectors {
        floats(&[d.grid.0 as f32, d.grid.1 as f32, d.embedder.out_dims() as f32]);
        floats(d.embedder.projection());
        match &d.model {
            AnomalyModel::Padim(m) => {
                floats(&m.mean);
                floats(&m.inv_chol);
            }
            AnomalyModel::PatchCore(m) => floats(&m.bank),
        }
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    backbone_sha256: String,
    models_sha256: String,
    seen: usize,
    members: Vec<MemberHeader>,
    captures: Vec<CaptureStats>,
    embedding_dims: usize,
    early: Vec<EarlyHeader>,
}

#[derive(Serialize, Deserialize)]
struct MemberHeader {
    fit: FitHeader,
    grid: [usize; 2],
    dims: usize,
    holdout: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
enum FitHeader {
    /// `count` photos in the running sums (0: none yet, and no tensors).
    Padim {
        count: u64,
    },
    PatchCore {
        ratio: f32,
        patches: usize,
    },
}

#[derive(Serialize, Deserialize)]
struct EarlyHeader {
    file: String,
    key: String,
    width: u32,
    height: u32,
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|v| bytes(*v)).collect()
}

impl Learning {
    pub fn to_bytes(&self) -> Result<Vec<u8>, EngineError> {
        let bug =
            |e: &dyn std::fmt::Display| EngineError::Training(format!("the learning state could not be written ({e}); this is a bug"));
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut members = Vec::with_capacity(self.members.len());
        for (i, m) in self.members.iter().enumerate() {
            let positions = m.grid.0 * m.grid.1;
            let fit = match &m.fit {
                Fit::Padim(None) => FitHeader::Padim { count: 0 },
                Fit::Padim(Some(acc)) => {
                    let (mean, comoment) = acc.parts();
                    tensors.push((format!("m{i}.padim.mean"), Dtype::F64, vec![positions, m.dims], le_bytes(mean, f64::to_le_bytes)));
                    let t = m.dims * (m.dims + 1) / 2;
                    tensors.push((format!("m{i}.padim.comoment"), Dtype::F64, vec![positions, t], le_bytes(comoment, f64::to_le_bytes)));
                    FitHeader::Padim { count: acc.count }
                }
                Fit::PatchCore { ratio, patches } => {
                    let n = patches.len() / m.dims.max(1);
                    tensors.push((format!("m{i}.patchcore.patches"), Dtype::F32, vec![n, m.dims], le_bytes(patches, f32::to_le_bytes)));
                    FitHeader::PatchCore { ratio: *ratio, patches: n }
                }
            };
            let holdout: Vec<f32> = m.holdout.iter().flat_map(|g| g.data.iter().copied()).collect();
            tensors.push((
                format!("m{i}.holdout"),
                Dtype::F32,
                vec![m.holdout.len(), positions * m.dims],
                le_bytes(&holdout, f32::to_le_bytes),
            ));
            members.push(MemberHeader { fit, grid: [m.grid.0, m.grid.1], dims: m.dims, holdout: m.holdout.len() });
        }
        let embedding_dims = self.photos.first().map_or(0, |p| p.0.len());
        let photos: Vec<f32> = self.photos.iter().flat_map(|p| p.0.iter().copied()).collect();
        tensors.push(("photos".into(), Dtype::F32, vec![self.photos.len(), embedding_dims], le_bytes(&photos, f32::to_le_bytes)));
        let mut early = Vec::with_capacity(self.early.len());
        for (j, e) in self.early.iter().enumerate() {
            let (width, height) = e.image.dimensions();
            tensors.push((format!("early.{j}"), Dtype::U8, vec![height as usize, width as usize, 3], e.image.as_raw().clone()));
            early.push(EarlyHeader { file: e.file.clone(), key: e.key.clone(), width, height });
        }
        let header = Header {
            format: LEARNING_FORMAT.into(),
            version: LEARNING_VERSION,
            backbone_sha256: self.backbone_sha256.clone(),
            models_sha256: self.models_sha256.clone(),
            seen: self.seen,
            members,
            captures: self.captures.clone(),
            embedding_dims,
            early,
        };
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(name, dtype, shape, data)| TensorView::new(*dtype, shape.clone(), data).map(|v| (name.as_str(), v)))
            .collect::<Result<_, _>>()
            .map_err(|e| bug(&e))?;
        let json = serde_json::to_string(&header).map_err(|e| bug(&e))?;
        safetensors::serialize(views, Some(HashMap::from([("damagelens".to_string(), json)]))).map_err(|e| bug(&e))
    }

    /// Reads and checks a learning state file (`file` names it in errors).
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Learning, EngineError> {
        let bad = |reason: String| EngineError::Learning { file: file.to_string(), reason };
        if bytes.len() > MAX_LEARNING_BYTES {
            return Err(bad(format!("it is {} MB, more than any learning state", bytes.len() >> 20)));
        }
        let (st, header): (_, Header) = read_safetensors(bytes, "learning state").map_err(bad)?;
        if header.format != LEARNING_FORMAT || header.version != LEARNING_VERSION {
            return Err(bad(format!(
                "format {:?} version {}, not {LEARNING_FORMAT} version {LEARNING_VERSION}",
                header.format, header.version
            )));
        }
        // Every count is checked against the others before a tensor is read against it.
        let held_out = header.seen / super::settings::HOLDOUT_EVERY;
        let early_expected = header.seen.min(super::settings::HELD_OUT_FROM - 1);
        if header.captures.len() != header.seen || header.early.len() != early_expected || header.members.is_empty() {
            return Err(bad("its counts of photos do not agree".into()));
        }
        if header.captures.iter().any(|c| ![c.sharpness, c.brightness, c.glare].iter().all(|v| v.is_finite())) {
            return Err(bad("a photo's capture measures are not finite numbers".into()));
        }
        let tensor = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<Vec<u8>, EngineError> {
            let view = st.tensor(name).map_err(|_| bad(format!("tensor {name} is missing")))?;
            if view.dtype() != dtype || view.shape() != shape {
                return Err(bad(format!("tensor {name} is {:?} {:?}, expected {dtype:?} {shape:?}", view.dtype(), view.shape())));
            }
            Ok(view.data().to_vec())
        };
        let floats = |name: &str, shape: &[usize]| -> Result<Vec<f32>, EngineError> {
            let values: Vec<f32> =
                tensor(name, Dtype::F32, shape)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad(format!("tensor {name} holds values that are not finite numbers")));
            }
            Ok(values)
        };
        let doubles = |name: &str, shape: &[usize]| -> Result<Vec<f64>, EngineError> {
            let values: Vec<f64> = tensor(name, Dtype::F64, shape)?
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad(format!("tensor {name} holds values that are not finite numbers")));
            }
            Ok(values)
        };
        let mut members = Vec::with_capacity(header.members.len());
        for (i, m) in header.members.iter().enumerate() {
            let [h, w] = m.grid;
            let d = m.dims;
            if !(1..=MAX_GRID_SIDE).contains(&h) || !(1..=MAX_GRID_SIDE).contains(&w) || !(1..=MAX_DIMS).contains(&d) {
                return Err(bad(format!("implausible sizes: grid {h}x{w}, {d} dims")));
            }
            if m.holdout != held_out {
                return Err(bad("its counts of held-out photos do not agree".into()));
            }
            let positions = h * w;
            let fit = match m.fit {
                FitHeader::Padim { count: 0 } => Fit::Padim(None),
                FitHeader::Padim { count } => {
                    if count > header.seen as u64 * MAX_COPIES_PER_PHOTO as u64 {
                        return Err(bad("its count of learnt photos does not agree".into()));
                    }
                    let mean = doubles(&format!("m{i}.padim.mean"), &[positions, d])?;
                    let comoment = doubles(&format!("m{i}.padim.comoment"), &[positions, d * (d + 1) / 2])?;
                    Fit::Padim(Some(PadimAccumulator::from_parts(h, w, d, count, mean, comoment).map_err(bad)?))
                }
                FitHeader::PatchCore { ratio, patches } => {
                    if !(ratio > 0.0 && ratio <= 1.0)
                        || patches > header.seen.saturating_mul(MAX_COPIES_PER_PHOTO).saturating_mul(positions)
                    {
                        return Err(bad("its PatchCore settings are not valid".into()));
                    }
                    Fit::PatchCore { ratio, patches: floats(&format!("m{i}.patchcore.patches"), &[patches, d])? }
                }
            };
            let holdout = floats(&format!("m{i}.holdout"), &[held_out, positions * d])?;
            let holdout = holdout
                .chunks_exact((positions * d).max(1))
                .take(held_out)
                .map(|data| PatchGrid { height: h, width: w, dims: d, data: data.to_vec() })
                .collect();
            members.push(LearntMember { fit, holdout, grid: (h, w), dims: d });
        }
        let e = header.embedding_dims;
        if !(1..=MAX_DIMS).contains(&e) && header.seen > 0 {
            return Err(bad(format!("implausible embedding size {e}")));
        }
        let photos =
            floats("photos", &[header.seen, e])?.chunks_exact(e.max(1)).take(header.seen).map(|c| GlobalEmbedding(c.to_vec())).collect();
        let mut early = Vec::with_capacity(header.early.len());
        for (j, photo) in header.early.into_iter().enumerate() {
            if !(1..=MAX_PHOTO_SIDE).contains(&photo.width)
                || !(1..=MAX_PHOTO_SIDE).contains(&photo.height)
                || photo.file.chars().count() > MAX_NAME_CHARS
                || photo.key.chars().count() > MAX_NAME_CHARS
            {
                return Err(bad(format!("early photo {j} has implausible sizes or names")));
            }
            let pixels = tensor(&format!("early.{j}"), Dtype::U8, &[photo.height as usize, photo.width as usize, 3])?;
            let image = RgbImage::from_raw(photo.width, photo.height, pixels).ok_or_else(|| bad(format!("early photo {j} is damaged")))?;
            early.push(EarlyPhoto { file: photo.file, key: photo.key, image });
        }
        Ok(Learning {
            members,
            seen: header.seen,
            captures: header.captures,
            photos,
            early,
            backbone_sha256: header.backbone_sha256,
            models_sha256: header.models_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grid(seed: usize, dims: usize) -> PatchGrid {
        PatchGrid { height: 1, width: 2, dims, data: (0..2 * dims).map(|k| ((seed * 7 + k * 3) % 11) as f32 - 5.0).collect() }
    }

    /// A small state: 6 photos (one held out), a PaDiM member and a PatchCore member.
    fn small() -> Learning {
        let mut padim = Fit::Padim(None);
        let mut patchcore = Fit::PatchCore { ratio: 0.5, patches: Vec::new() };
        for seed in [1, 2, 3, 4, 6] {
            padim.add(&grid(seed, 3)).unwrap();
            patchcore.add(&grid(seed, 2)).unwrap();
        }
        let capture = CaptureStats { sharpness: 0.1, brightness: 120.0, glare: 0.0 };
        Learning {
            members: vec![
                LearntMember { fit: padim, holdout: vec![grid(5, 3)], grid: (1, 2), dims: 3 },
                LearntMember { fit: patchcore, holdout: vec![grid(5, 2)], grid: (1, 2), dims: 2 },
            ],
            seen: 6,
            captures: vec![capture; 6],
            photos: (0..6).map(|i| GlobalEmbedding(vec![i as f32, 1.0])).collect(),
            early: (0..6)
                .map(|i| EarlyPhoto {
                    file: format!("{i}.png"),
                    key: format!("{}/{i}.png", i + 1),
                    image: RgbImage::from_pixel(3, 2, image::Rgb([i, 2, 3])),
                })
                .collect(),
            backbone_sha256: "ab".repeat(32),
            models_sha256: "cd".repeat(32),
        }
    }

    #[test]
    fn the_file_gives_back_the_state_exactly() {
        let state = small();
        assert_eq!(Learning::from_bytes("p.learning", &state.to_bytes().unwrap()).unwrap(), state);
    }

    #[test]
    fn counts_that_disagree_are_refused_by_name() {
        let mut state = small();
        state.seen = 7; // one capture short
        let error = Learning::from_bytes("p.learning", &state.to_bytes().unwrap()).unwrap_err();
        assert!(error.to_string().starts_with("p.learning: its counts of photos do not agree"), "{error}");
        let mut state = small();
        state.members[0].holdout.clear(); // 6 photos hold one out
        assert!(Learning::from_bytes("p.learning", &state.to_bytes().unwrap()).is_err());
        assert!(Learning::from_bytes("p.learning", b"not a state").is_err());
    }

    #[test]
    fn a_digest_names_the_model_not_its_calibration() {
        use crate::engine::embed::{EmbedConfig, Embedder};
        use crate::engine::profile::MapScale;
        let embedder =
            Embedder::from_parts(EmbedConfig { layers: vec!["f".into()], dims: None, seed: 1, neighbourhood: 1 }, 2, Vec::new()).unwrap();
        let detector = |bank: Vec<f32>, scale: MapScale| Detector {
            embedder: embedder.clone(),
            grid: (1, 1),
            model: AnomalyModel::PatchCore(PatchCoreModel { dims: 2, bank }),
            scale,
        };
        let a = models_digest(&[detector(vec![1.0, 2.0], MapScale::IDENTITY)]);
        assert_eq!(a, models_digest(&[detector(vec![1.0, 2.0], MapScale { mean: 3.0, std: 1.0 })]));
        assert_ne!(a, models_digest(&[detector(vec![1.0, 2.5], MapScale::IDENTITY)]));
        assert_eq!(a.len(), 64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn never_panics_on_flipped_bytes(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut bytes = small().to_bytes().unwrap();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let _ = Learning::from_bytes("p.learning", &bytes);
        }
    }
}
