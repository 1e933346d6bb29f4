//! The whole chain for one image, and training a profile from good images.

use image::RgbImage;
use sha2::Digest;

use super::backbone::Backbone;
use super::calibration_stats::{calibrated, normal_statistics};
use super::capture::{CaptureReference, CaptureStats};
use super::chooser::{self, Candidate, MethodReport, CANDIDATE_COPIES};
use super::clock::{StageTimes, Stopwatch};
use super::damage_head::fuse;
use super::embed::{Embedder, FeatureMap, PatchGrid};
use super::handheld::HandHeld;
use super::identify::{Gallery, GlobalEmbedding};
use super::image_ops::Preprocess;
use super::learning::{models_digest, EarlyPhoto, Fit, Learning, LearntMember};
use super::manifest::BackboneManifest;
use super::postprocess::{blur_sigma, heatmap_rgba, region_outline, AnomalyMap, Band, Calibration};
use super::profile::{short, AnomalyModel, BackboneId, Detector, LearntHead, MapScale, Profile};
use super::settings::{
    DetectorSettings, Method, TrainSettings, HELD_OUT_FROM, HOLDOUT_EVERY, MIN_TRAINING_IMAGES, PATCHCORE_CORESET_RATIO,
};
use super::EngineError;

/// Unlearnt hand-held copies made of each of the first photos, for a threshold when too
/// few photos come to hold some out (two, so that even one photo gives a spread).
const PROBES_PER_PHOTO: u64 = 2;
/// Their seeds lie apart from those of learnt copies (1..=augment).
const PROBE_SEED: u64 = 1000;
/// Sigmas above the held-out mean for the threshold without damaged examples. Image
/// scores are maxima of a map, so their spread is wide and skewed: 3 sigma over a
/// handful of held-out photos lands far above every good item and misses real damage
/// (ELPV: 12 of 20 cracked cells caught at 3 sigma, 17 at 2, none of 20 good flagged).
const NORMAL_K: f32 = 2.0;

/// The result of inspecting one image.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Raw image score (max of the anomaly map).
    pub score: f32,
    /// The same on the 0..1 scale where the threshold is 0.5.
    pub normalised_score: f32,
    /// OK, CHECK or DAMAGED under the profile's calibration.
    pub band: Band,
    /// The raw anomaly map at the backbone's input resolution.
    pub map: AnomalyMap,
    /// map.size^2 RGBA pixels, to be stretched over the photo.
    pub heatmap: Vec<u8>,
    /// map.size^2 bytes, 1 on the border of the damaged region.
    pub outline: Vec<u8>,
    pub image_width: u32,
    pub image_height: u32,
    /// The profile's damage head's highest damage probability over the photo (0..1),
    /// when it has one; the map then shows the two fused.
    pub damage: Option<f32>,
}

/// Decode -> preprocess -> backbone: shared by training, inspection and evaluation.
/// Cloning is cheap: the backbone's plan is shared, not copied.
#[derive(Clone)]
pub struct Inspector {
    manifest: BackboneManifest,
    preprocess: Preprocess,
    backbone: Backbone,
}

impl Inspector {
    /// Loads the backbone with every feature output its manifest lists.
    pub fn new(manifest: BackboneManifest, onnx: &[u8]) -> Result<Self, EngineError> {
        let size = manifest.input.size;
        Self::with_input_size(manifest, onnx, size)
    }

    /// The same backbone fed `size` x `size` photos: finer detail for small defects, at
    /// a cost that grows with the square of the size.
    pub fn with_input_size(manifest: BackboneManifest, onnx: &[u8], size: u32) -> Result<Self, EngineError> {
        if !size.is_multiple_of(32) || !(64..=1024).contains(&size) {
            return Err(EngineError::model(&manifest.file, format!("input size {size} must be a multiple of 32 from 64 to 1024")));
        }
        // Profiles name the backbone by this hash; a different file under the same name
        // would give profiles whose scores mean nothing on another device.
        let sha256: String = sha2::Sha256::digest(onnx).iter().map(|b| format!("{b:02x}")).collect();
        if !sha256.eq_ignore_ascii_case(&manifest.onnx_sha256) {
            return Err(EngineError::model(
                &manifest.file,
                format!(
                    "its sha256 is {}, but the manifest expects {}: it is another or a damaged file",
                    short(&sha256),
                    short(&manifest.onnx_sha256)
                ),
            ));
        }
        let names: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
        let preprocess = Preprocess { size, ..manifest.preprocess() };
        let backbone = Backbone::load(&manifest, onnx, size, &names)?;
        Ok(Inspector { preprocess, backbone, manifest })
    }

    pub fn input_size(&self) -> u32 {
        self.preprocess.size
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    pub fn manifest(&self) -> &BackboneManifest {
        &self.manifest
    }

    pub fn backbone_id(&self) -> BackboneId {
        BackboneId { name: self.manifest.name.clone(), sha256: self.manifest.onnx_sha256.clone(), input_size: self.preprocess.size }
    }

    /// Feature maps of one image file, plus the photo's size.
    pub fn feature_maps(&self, file: &str, bytes: &[u8], even_brightness: bool) -> Result<(Vec<FeatureMap>, (u32, u32)), EngineError> {
        let (tensor, dims) = self.preprocess.photo(file, bytes, even_brightness)?;
        Ok((self.backbone.run(tensor)?, dims))
    }

    fn map_of(&self, model: &AnomalyModel, grid: &PatchGrid) -> Result<AnomalyMap, EngineError> {
        Ok(self.map_of_patches(&model.score(grid)?, grid))
    }

    /// The raw anomaly map of one image under `profile`, plus the photo's size.
    pub fn anomaly_map(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<(AnomalyMap, (u32, u32)), EngineError> {
        let mut times = StageTimes::default();
        self.timed_map(profile, file, bytes, &mut times)
    }

    fn timed_map(
        &self,
        profile: &Profile,
        file: &str,
        bytes: &[u8],
        times: &mut StageTimes,
    ) -> Result<(AnomalyMap, (u32, u32)), EngineError> {
        check_profile(&self.manifest, self.preprocess.size, profile)?;
        let (maps, dims) = self.timed_feature_maps(file, bytes, profile.even_brightness, times)?;
        Ok((self.map_of_features(profile, &maps, times)?, dims))
    }

    /// [`Self::feature_maps`], timing preprocessing and the backbone into `times`.
    pub fn timed_feature_maps(
        &self,
        file: &str,
        bytes: &[u8],
        even_brightness: bool,
        times: &mut StageTimes,
    ) -> Result<(Vec<FeatureMap>, (u32, u32)), EngineError> {
        let mut clock = Stopwatch::start();
        let (tensor, dims) = self.preprocess.photo(file, bytes, even_brightness)?;
        times.preprocess = clock.lap();
        let maps = self.backbone.run(tensor)?;
        times.backbone = clock.lap();
        Ok((maps, dims))
    }

    /// The anomaly map of a photo's feature maps (computed with `profile`'s preprocessing).
    fn map_of_features(&self, profile: &Profile, maps: &[FeatureMap], times: &mut StageTimes) -> Result<AnomalyMap, EngineError> {
        Ok(self.map_and_grid(profile, maps, times)?.0)
    }

    /// [`Self::map_of_features`], and the first detector's patch grid of the photo (what
    /// a damage head reads).
    fn map_and_grid(&self, profile: &Profile, maps: &[FeatureMap], times: &mut StageTimes) -> Result<(AnomalyMap, PatchGrid), EngineError> {
        let mut clock = Stopwatch::start();
        let mut members = Vec::with_capacity(profile.detectors.len());
        let mut first = None;
        for d in &profile.detectors {
            let grid = d.embedder.embed(maps)?;
            members.push((d.model.score(&grid)?, grid.height, grid.width, d.scale));
            first.get_or_insert(grid);
        }
        times.scoring = clock.lap();
        let size = self.preprocess.size as usize;
        let mut maps_of_detectors = members
            .into_iter()
            .map(|(scores, h, w, scale)| Ok((AnomalyMap::from_patch_scores(&scores, h, w, size, blur_sigma(size as u32)), scale)));
        let map = combine(&mut maps_of_detectors)?;
        times.postprocess = clock.lap();
        Ok((map, first.ok_or(EngineError::NothingLearnt)?))
    }

    /// The raw anomaly map of one image under `profile`, its first detector's patch grid
    /// and the photo's size.
    pub fn anomaly_map_and_grid(
        &self,
        profile: &Profile,
        file: &str,
        bytes: &[u8],
    ) -> Result<(AnomalyMap, PatchGrid, (u32, u32)), EngineError> {
        check_profile(&self.manifest, self.preprocess.size, profile)?;
        let mut times = StageTimes::default();
        let (maps, dims) = self.timed_feature_maps(file, bytes, profile.even_brightness, &mut times)?;
        let (map, grid) = self.map_and_grid(profile, &maps, &mut times)?;
        Ok((map, grid, dims))
    }

    /// A map of `grid`'s patch values (a damage head's probabilities, say) laid out and
    /// smoothed as an anomaly map is.
    pub fn map_of_patches(&self, values: &[f32], grid: &PatchGrid) -> AnomalyMap {
        let size = self.preprocess.size;
        AnomalyMap::from_patch_scores(values, grid.height, grid.width, size as usize, blur_sigma(size))
    }

    /// Inspects a photo whose feature maps were already computed (by
    /// [`Self::timed_feature_maps`] with `profile`'s brightness setting, into `times`):
    /// identification and inspection share one backbone run.
    pub fn inspect_features(
        &self,
        profile: &Profile,
        maps: &[FeatureMap],
        dims: (u32, u32),
        mut times: StageTimes,
    ) -> Result<(Inspection, StageTimes), EngineError> {
        check_profile(&self.manifest, self.preprocess.size, profile)?;
        let (map, grid) = self.map_and_grid(profile, maps, &mut times)?;
        let mut clock = Stopwatch::start();
        let calibration = &profile.calibration;
        let inspection = match &profile.damage_head {
            None => Inspection::new(map, calibration, None, dims),
            // The head shows where the damage is; the verdict stays the anomaly model's.
            Some(learnt) => {
                let damage = self.map_of_patches(&learnt.head.probabilities(&grid)?, &grid);
                let score = map.max();
                let shown = fuse(&map, &damage, calibration.threshold, learnt.weight);
                Inspection::new(shown, calibration, None, dims).judged_by(score, calibration, damage.max())
            }
        };
        times.postprocess += clock.lap();
        Ok((inspection, times))
    }

    /// Why this photo is not fit to be judged against `profile` (blurred, dark, glaring),
    /// or None. Profiles without a capture reference accept every photo.
    pub fn capture_problem(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<Option<&'static str>, EngineError> {
        let Some(reference) = &profile.capture else { return Ok(None) };
        let image = self.preprocess.resized(file, bytes)?;
        Ok(reference.problem(&CaptureStats::of(&image)))
    }

    pub fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<Inspection, EngineError> {
        Ok(self.inspect_timed(profile, file, bytes)?.0)
    }

    /// [`Self::inspect`], with the time each stage took.
    pub fn inspect_timed(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<(Inspection, StageTimes), EngineError> {
        check_profile(&self.manifest, self.preprocess.size, profile)?;
        let mut times = StageTimes::default();
        let (maps, dims) = self.timed_feature_maps(file, bytes, profile.even_brightness, &mut times)?;
        self.inspect_features(profile, &maps, dims, times)
    }
}

/// Fails unless `profile` was trained on this backbone at this input size.
pub(crate) fn check_profile(manifest: &BackboneManifest, size: u32, profile: &Profile) -> Result<(), EngineError> {
    if profile.backbone.sha256 != manifest.onnx_sha256 {
        return Err(EngineError::OtherBackbone {
            file: profile.name.clone(),
            found: format!("{} {}, this app runs {}", profile.backbone.name, short(&profile.backbone.sha256), short(&manifest.onnx_sha256)),
        });
    }
    if profile.backbone.input_size != size {
        return Err(EngineError::Training(format!(
            "profile {} works on {} px photos, the engine was started for {size} px",
            profile.name, profile.backbone.input_size
        )));
    }
    Ok(())
}

impl Inspection {
    /// The verdict, heatmap and outline of a raw map under `calibration`; `heatmap` is
    /// taken as given when the GPU already coloured it.
    pub fn new(map: AnomalyMap, calibration: &Calibration, heatmap: Option<Vec<u8>>, (width, height): (u32, u32)) -> Self {
        let score = map.max();
        let normalised: Vec<f32> = map.values.iter().map(|v| calibration.normalise(*v)).collect();
        Inspection {
            score,
            normalised_score: calibration.normalise(score),
            band: calibration.band(score),
            heatmap: heatmap.unwrap_or_else(|| heatmap_rgba(&normalised)),
            outline: region_outline(&normalised, map.size),
            map,
            image_width: width,
            image_height: height,
            damage: None,
        }
    }

    /// The verdict from the anomaly model's `score` (the map shown is a fused one), with
    /// the damage head's highest probability.
    pub fn judged_by(self, score: f32, calibration: &Calibration, damage: f32) -> Self {
        Inspection { score, normalised_score: calibration.normalise(score), band: calibration.band(score), damage: Some(damage), ..self }
    }
}

/// One detector's map as it is; several detectors' maps put on their common scale and
/// averaged pixel by pixel, so the ensemble's map still shows where the damage is.
pub(crate) fn combine(maps: &mut dyn Iterator<Item = Result<(AnomalyMap, MapScale), EngineError>>) -> Result<AnomalyMap, EngineError> {
    let mut members: Vec<(AnomalyMap, MapScale)> = maps.collect::<Result<_, _>>()?;
    if members.len() <= 1 {
        return members.pop().map(|(map, _)| map).ok_or(EngineError::NothingLearnt);
    }
    let n = members.len() as f32;
    let mut sum = AnomalyMap { size: members[0].0.size, values: vec![0.0; members[0].0.values.len()] };
    for (map, scale) in &members {
        sum.values.iter_mut().zip(&map.values).for_each(|(s, v)| *s += scale.apply(*v) / n);
    }
    Ok(sum)
}

/// Each member's scale for [`combined`]: a lone member keeps its units; several are each
/// read in spreads above their maps of the good photos judged before the threshold.
fn common_scales(good_maps_per_member: &[Vec<AnomalyMap>]) -> Vec<MapScale> {
    let several = good_maps_per_member.len() > 1;
    good_maps_per_member.iter().map(|maps| if several { MapScale::of(maps) } else { MapScale::IDENTITY }).collect()
}

/// Each photo's map from its maps under every member (`maps_per_member[member][photo]`),
/// with [`combine`] on the members' `scales`.
fn combined(maps_per_member: &[Vec<AnomalyMap>], scales: &[MapScale]) -> Result<Vec<AnomalyMap>, EngineError> {
    (0..maps_per_member.first().map_or(0, Vec::len))
        .map(|photo| combine(&mut maps_per_member.iter().zip(scales).map(|(maps, scale)| Ok((maps[photo].clone(), *scale)))))
        .collect()
}

/// Keeps the items whose flag is set.
fn keep_flagged<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    items.retain(|_| *flags.next().unwrap_or(&false));
}

/// One detector being trained.
struct Member {
    embedder: Embedder,
    fit: Fit,
    grid: Option<(usize, usize)>,
    holdout: Vec<PatchGrid>,
    /// Learns the hand-held copies of each photo.
    copies: bool,
    /// The candidate it belongs to, while the method is being chosen.
    candidate: Option<Candidate>,
}

impl Member {
    fn new(inspector: &Inspector, settings: &DetectorSettings, copies: bool, candidate: Option<Candidate>) -> Result<Self, EngineError> {
        let fit = match settings.method {
            Method::Padim => Fit::Padim(None),
            Method::PatchCore { coreset_ratio } => Fit::PatchCore { ratio: coreset_ratio, patches: Vec::new() },
        };
        let embedder = Embedder::new(settings.embed.clone(), inspector.manifest())?;
        Ok(Member { embedder, fit, grid: None, holdout: Vec::new(), copies, candidate })
    }

    /// Fitted on the learnt photos; with `few`, on the held-out ones too.
    fn held_out_model(&self, few: bool) -> Result<AnomalyModel, EngineError> {
        let (dims, seed) = (self.embedder.out_dims(), self.embedder.config().seed);
        if few {
            let mut fit = self.fit.clone();
            for grid in &self.holdout {
                fit.add(grid)?;
            }
            fit.model(dims, seed, few)
        } else {
            self.fit.model(dims, seed, few)
        }
    }
}

/// The unlearnt hand-held copies of a product of few photos: each detector's patch grids
/// of them, and their global embeddings.
struct Probes {
    grids: Vec<Vec<PatchGrid>>,
    embeddings: Vec<GlobalEmbedding>,
    /// The copies themselves, for made-up damage while the method is being chosen.
    photos: Vec<RgbImage>,
}

/// Trains a profile one image at a time, so a caller can report progress and skip a bad
/// file without losing the others.
pub struct Trainer {
    /// A handle on the shared backbone (cloning an inspector shares its plan).
    inspector: Inspector,
    members: Vec<Member>,
    even_brightness: bool,
    augment: u32,
    seen: usize,
    /// Every good photo's capture measures, for the product's capture reference.
    captures: Vec<CaptureStats>,
    /// Every good photo's global embedding, for the product's identification gallery.
    photos: Vec<GlobalEmbedding>,
    /// The first photos, kept until enough have come to hold some out: a product of
    /// fewer is judged on unlearnt copies of them, made only then.
    early: Vec<EarlyPhoto>,
    /// Choosing the method: the held-out photos, which get made-up damage at the end.
    choosing: bool,
    held_photos: Vec<RgbImage>,
    /// A resumed product's damage head: it reads the same features after more good photos.
    damage_head: Option<LearntHead>,
}

impl Trainer {
    pub fn new(inspector: &Inspector, settings: &TrainSettings) -> Result<Self, EngineError> {
        let mut members = Vec::new();
        if settings.choose {
            for candidate in Candidate::ALL {
                let own = candidate.settings();
                for d in &own.detectors {
                    members.push(Member::new(inspector, d, own.augment > 0, Some(candidate))?);
                }
            }
        } else {
            for d in &settings.detectors {
                members.push(Member::new(inspector, d, settings.augment > 0, None)?);
            }
        }
        if members.is_empty() {
            return Err(EngineError::Training("no detector to train; choose PaDiM, PatchCore or both".into()));
        }
        Ok(Trainer {
            inspector: inspector.clone(),
            members,
            even_brightness: settings.even_brightness,
            augment: if settings.choose { CANDIDATE_COPIES } else { settings.augment },
            seen: 0,
            captures: Vec::new(),
            photos: Vec::new(),
            early: Vec::new(),
            choosing: settings.choose,
            held_photos: Vec::new(),
            damage_head: None,
        })
    }

    /// A trainer that embeds and fits as `profile` was trained, so that the same good
    /// photos give the same model and the same held-out photos. PatchCore profiles do not
    /// record their coreset ratio; the app trains them all with [`PATCHCORE_CORESET_RATIO`].
    pub fn like(inspector: &Inspector, profile: &Profile) -> Result<Self, EngineError> {
        let members = profile
            .detectors
            .iter()
            .map(|d| {
                let fit = match &d.model {
                    AnomalyModel::Padim(_) => Fit::Padim(None),
                    AnomalyModel::PatchCore(_) => Fit::PatchCore { ratio: PATCHCORE_CORESET_RATIO, patches: Vec::new() },
                };
                Member { embedder: d.embedder.clone(), fit, grid: None, holdout: Vec::new(), copies: profile.augment > 0, candidate: None }
            })
            .collect();
        Ok(Trainer {
            inspector: inspector.clone(),
            members,
            even_brightness: profile.even_brightness,
            augment: profile.augment,
            seen: 0,
            captures: Vec::new(),
            photos: Vec::new(),
            early: Vec::new(),
            choosing: false,
            held_photos: Vec::new(),
            damage_head: None,
        })
    }

    /// The trainer `profile` was made by, as it stood just before it finished (`learning`,
    /// from [`Self::finish_learning`]): photos added now and a new finish give exactly the
    /// profile that training on all the photos in the same order gives, with the backbone
    /// run on the new ones only. The method is the profile's, even when it was chosen
    /// automatically (choosing again needs every candidate: train afresh for that), and
    /// so is its damage head; the threshold is chosen again as training chooses it.
    /// A state of another version of the product, or of another backbone, is refused.
    pub fn resume(inspector: &Inspector, profile: &Profile, learning: Learning) -> Result<Self, EngineError> {
        let refuse = |reason: &str| EngineError::Learning { file: format!("{}'s learning state", profile.name), reason: reason.into() };
        check_profile(&inspector.manifest, inspector.input_size(), profile)?;
        if learning.backbone_sha256 != inspector.manifest.onnx_sha256 {
            return Err(refuse("it was learnt with another backbone"));
        }
        if learning.models_sha256 != models_digest(&profile.detectors) {
            return Err(refuse("it belongs to another version of the product's model"));
        }
        if learning.members.len() != profile.detectors.len() {
            return Err(refuse("it has another number of detectors than the profile"));
        }
        let mut trainer = Trainer::like(inspector, profile)?;
        for ((member, learnt), detector) in trainer.members.iter_mut().zip(learning.members).zip(&profile.detectors) {
            if !learnt.fit.fits(&detector.model) || learnt.grid != detector.grid || learnt.dims != detector.embedder.out_dims() {
                return Err(refuse("its detectors do not match the profile's"));
            }
            (member.fit, member.holdout, member.grid) = (learnt.fit, learnt.holdout, Some(learnt.grid));
        }
        trainer.seen = learning.seen;
        trainer.captures = learning.captures;
        trainer.photos = learning.photos;
        trainer.early = learning.early;
        trainer.damage_head = profile.damage_head.clone();
        Ok(trainer)
    }

    /// Adds one good image; an error concerns this file only.
    pub fn add(&mut self, file: &str, bytes: &[u8]) -> Result<(), EngineError> {
        let image = self.inspector.preprocess.resized(file, bytes)?;
        let maps = self.inspector.backbone.run(self.inspector.preprocess.tensor(&image, self.even_brightness))?;
        let grids = self.grids(file, &maps)?;
        let embedding = GlobalEmbedding::from_maps(&maps)?;
        self.seen += 1;
        self.photos.push(embedding);
        self.captures.push(CaptureStats::of(&image));
        let held_out = self.seen.is_multiple_of(HOLDOUT_EVERY);
        // Hand-held copies are learnt, never held out: the threshold is chosen on photos
        // as the person took them.
        let key = format!("{}/{file}", self.seen);
        let mut copies = Vec::new();
        if !held_out && self.members.iter().any(|m| m.copies) {
            for copy in 1..=self.augment {
                copies.push(self.shot(file, &key, &image, u64::from(copy))?.0);
            }
        }
        if held_out && self.choosing {
            self.held_photos.push(image.clone());
        }
        // Until enough photos have come to hold some out, each is kept: a product of fewer
        // is judged on unlearnt copies of them ([`Self::probes`]).
        if self.seen < HELD_OUT_FROM {
            self.early.push(EarlyPhoto { file: file.to_string(), key, image });
        }
        for (i, (m, grid)) in self.members.iter_mut().zip(grids).enumerate() {
            m.grid = Some((grid.height, grid.width));
            if held_out {
                m.holdout.push(grid);
            } else {
                m.fit.add(&grid)?;
                if m.copies {
                    for copy in &copies {
                        m.fit.add(&copy[i])?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A hand-held copy of a photo (seeded by `seed` and the photo's `key`): each
    /// detector's patch grid of it, and its global embedding.
    fn shot(&self, file: &str, key: &str, image: &RgbImage, seed: u64) -> Result<(Vec<PatchGrid>, GlobalEmbedding, RgbImage), EngineError> {
        let photo = HandHeld::default().shot(seed, key, image.dimensions()).photo(image);
        let maps = self.run(&photo)?;
        Ok((self.grids(file, &maps)?, GlobalEmbedding::from_maps(&maps)?, photo))
    }

    fn run(&self, photo: &RgbImage) -> Result<Vec<FeatureMap>, EngineError> {
        self.inspector.backbone.run(self.inspector.preprocess.tensor(photo, self.even_brightness))
    }

    /// The unlearnt hand-held copies of a product of few photos, [`PROBES_PER_PHOTO`] of
    /// each: its threshold is chosen on them, and they widen its identification gallery.
    fn probes(&self) -> Result<Probes, EngineError> {
        let mut probes = Probes { grids: vec![Vec::new(); self.members.len()], embeddings: Vec::new(), photos: Vec::new() };
        for early in &self.early {
            for probe in 0..PROBES_PER_PHOTO {
                let (grids, embedding, photo) = self.shot(&early.file, &early.key, &early.image, PROBE_SEED + probe)?;
                probes.grids.iter_mut().zip(grids).for_each(|(member, grid)| member.push(grid));
                probes.embeddings.push(embedding);
                if self.choosing {
                    probes.photos.push(photo);
                }
            }
        }
        Ok(probes)
    }

    /// Each detector's patch grid of one photo's feature maps.
    fn grids(&self, file: &str, maps: &[FeatureMap]) -> Result<Vec<PatchGrid>, EngineError> {
        self.members
            .iter()
            .map(|m| {
                let grid = m.embedder.embed(maps)?;
                if m.grid.is_some_and(|g| g != (grid.height, grid.width)) {
                    return Err(EngineError::Training(format!("{file}: its feature grid differs from the other photos")));
                }
                Ok(grid)
            })
            .collect()
    }

    /// The detectors fitted without the held-out photos (each on its common scale), and
    /// the held-out photos' anomaly maps under them: scores of good photos the model has
    /// never seen, which is what a threshold must be chosen on (a photo the model was
    /// fitted on scores lower than a new one).
    pub fn held_out(&self) -> Result<(Vec<Detector>, Vec<AnomalyMap>), EngineError> {
        let probes = if self.few() { Some(self.probes()?) } else { None };
        self.held_out_on(probes.as_ref(), self.held_out_models()?)
    }

    /// Each member fitted without the held-out photos (with them, when too few came to
    /// hold some out).
    fn held_out_models(&self) -> Result<Vec<AnomalyModel>, EngineError> {
        self.members.iter().map(|m| m.held_out_model(self.few())).collect()
    }

    /// The photos each member is judged on before the threshold is chosen: the held-out
    /// ones, or with `probes` (too few photos to hold some out) the unlearnt hand-held copies.
    fn tests<'a>(&'a self, probes: Option<&'a Probes>, member: usize) -> &'a [PatchGrid] {
        probes.map_or(&self.members[member].holdout, |p| &p.grids[member])
    }

    /// [`Self::held_out`] with the members' `models` of [`Self::held_out_models`].
    fn held_out_on(&self, probes: Option<&Probes>, models: Vec<AnomalyModel>) -> Result<(Vec<Detector>, Vec<AnomalyMap>), EngineError> {
        let photos = if self.members.is_empty() { 0 } else { self.tests(probes, 0).len() };
        if photos == 0 {
            return Err(EngineError::Training(format!(
                "{} usable photo(s) of good items; at least {MIN_TRAINING_IMAGES} are needed",
                self.seen
            )));
        }
        let member_maps =
            models.iter().enumerate().map(|(i, model)| self.maps_of(model, self.tests(probes, i))).collect::<Result<Vec<_>, _>>()?;
        let scales = common_scales(&member_maps);
        let maps = combined(&member_maps, &scales)?;
        let detectors = self
            .members
            .iter()
            .zip(models)
            .zip(scales)
            .map(|((m, model), scale)| {
                Ok(Detector { embedder: m.embedder.clone(), grid: m.grid.ok_or(EngineError::NothingLearnt)?, model, scale })
            })
            .collect::<Result<_, EngineError>>()?;
        Ok((detectors, maps))
    }

    fn maps_of(&self, model: &AnomalyModel, grids: &[PatchGrid]) -> Result<Vec<AnomalyMap>, EngineError> {
        grids.iter().map(|grid| self.inspector.map_of(model, grid)).collect()
    }

    /// Keeps the candidate whose image scores best tell made-up damage on the photos it
    /// is judged on from those photos as they are ([`crate::engine::chooser`]), and drops
    /// the other candidates' members (and their `models` and probes).
    fn choose(&mut self, probes: &mut Option<Probes>, models: &mut Vec<AnomalyModel>) -> Result<MethodReport, EngineError> {
        let goods: &[RgbImage] = probes.as_ref().map_or(&self.held_photos, |p| &p.photos);
        let mut damaged: Vec<Vec<PatchGrid>> = vec![Vec::new(); self.members.len()];
        for (i, photo) in goods.iter().enumerate() {
            for kind in 0..chooser::KINDS {
                let maps = self.run(&chooser::damaged_copy(photo, i as u64, kind))?;
                damaged.iter_mut().zip(self.grids("made-up damage", &maps)?).for_each(|(member, grid)| member.push(grid));
            }
        }
        let (damaged_count, good_count) = (damaged[0].len(), goods.len());
        let mut scores = Vec::with_capacity(Candidate::ALL.len());
        for candidate in Candidate::ALL {
            let own: Vec<usize> = (0..self.members.len()).filter(|&i| self.members[i].candidate == Some(candidate)).collect();
            let good: Vec<Vec<AnomalyMap>> =
                own.iter().map(|&i| self.maps_of(&models[i], self.tests(probes.as_ref(), i))).collect::<Result<_, _>>()?;
            let bad: Vec<Vec<AnomalyMap>> = own.iter().map(|&i| self.maps_of(&models[i], &damaged[i])).collect::<Result<_, _>>()?;
            let scales = common_scales(&good);
            let image_scores = |maps: &[Vec<AnomalyMap>]| -> Result<Vec<f32>, EngineError> {
                Ok(combined(maps, &scales)?.iter().map(AnomalyMap::max).collect())
            };
            scores.push((candidate, chooser::pairwise_auroc(&image_scores(&bad)?, &image_scores(&good)?)));
        }
        let chosen = chooser::decide(&scores).ok_or(EngineError::NothingLearnt)?;
        let keep: Vec<bool> = self.members.iter().map(|m| m.candidate == Some(chosen)).collect();
        keep_flagged(&mut self.members, &keep);
        keep_flagged(models, &keep);
        if let Some(p) = probes {
            keep_flagged(&mut p.grids, &keep);
        }
        self.members.iter_mut().for_each(|m| m.candidate = None);
        self.augment = chosen.settings().augment;
        Ok(chooser::report(&scores, chosen, damaged_count, good_count))
    }

    /// The held-out good photos' patch grids under the first detector (what a damage
    /// head learns good patches from).
    pub fn held_out_grids(&self) -> &[PatchGrid] {
        self.members.first().map_or(&[], |m| &m.holdout)
    }

    /// Too few photos came to hold some out ([`HELD_OUT_FROM`]).
    fn few(&self) -> bool {
        self.seen < HELD_OUT_FROM
    }

    /// Fits on the training part; on the held-out part, puts the detectors on a common
    /// scale and chooses the threshold; then refits on everything so no photo is wasted.
    pub fn finish(self, name: &str) -> Result<Profile, EngineError> {
        Ok(self.complete(name, false)?.0)
    }

    /// [`Self::finish`], and the trainer's state just before it finished, from which
    /// [`Self::resume`] goes on learning.
    pub fn finish_learning(self, name: &str) -> Result<(Profile, Learning), EngineError> {
        let (profile, learning) = self.complete(name, true)?;
        Ok((profile, learning.ok_or(EngineError::NothingLearnt)?))
    }

    fn complete(mut self, name: &str, keep: bool) -> Result<(Profile, Option<Learning>), EngineError> {
        let few = self.few();
        if self.seen < MIN_TRAINING_IMAGES {
            return Err(EngineError::Training(format!(
                "{} usable photo(s) of good items; at least {MIN_TRAINING_IMAGES} are needed. Add more and train again",
                self.seen
            )));
        }
        let mut probes = if few { Some(self.probes()?) } else { None };
        let mut models = self.held_out_models()?;
        let method = if self.choosing { Some(self.choose(&mut probes, &mut models)?) } else { None };
        let (held_out, maps) = self.held_out_on(probes.as_ref(), models)?;
        let scores: Vec<f32> = maps.iter().map(AnomalyMap::max).collect();
        let lo = maps.iter().map(AnomalyMap::min).fold(f32::INFINITY, f32::min);
        let hi = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let threshold = normal_statistics(&scores, NORMAL_K).map_err(EngineError::Training)?;
        let mut detectors = Vec::with_capacity(self.members.len());
        let mut learnt = Vec::with_capacity(if keep { self.members.len() } else { 0 });
        for (m, fitted) in self.members.into_iter().zip(held_out) {
            // Kept: the fit without the held-out photos, which a later finish holds out again.
            let (mut all, kept) = if keep { (m.fit.clone(), Some(m.fit)) } else { (m.fit, None) };
            for grid in &m.holdout {
                all.add(grid)?;
            }
            let model = all.model(m.embedder.out_dims(), m.embedder.config().seed, few)?;
            if let Some(fit) = kept {
                learnt.push(LearntMember { fit, holdout: m.holdout, grid: fitted.grid, dims: m.embedder.out_dims() });
            }
            detectors.push(Detector { model, ..fitted });
        }
        let gallery = Gallery::from_photos(&match probes {
            // A product of few photos is recognised from their copies too.
            Some(p) => [self.photos.as_slice(), &p.embeddings].concat(),
            None => self.photos.clone(),
        })?;
        let profile = Profile {
            name: name.to_string(),
            backbone: self.inspector.backbone_id(),
            detectors,
            even_brightness: self.even_brightness,
            augment: self.augment,
            capture: CaptureReference::of(&self.captures),
            calibration: calibrated(
                threshold,
                (lo, hi),
                if few {
                    format!(
                        "Normal-score statistics: mean + {NORMAL_K}\u{3c3} of the scores of {} hand-held copies of the {} good photos, \
                         which the model does not learn (too few photos to hold some out; at least their highest). \
                         No damaged examples were used.",
                        scores.len(),
                        self.seen
                    )
                } else {
                    format!(
                        "Normal-score statistics: mean + {NORMAL_K}\u{3c3} of the scores of {} held-out good photos \
                         (at least their highest). No damaged examples were used.",
                        scores.len()
                    )
                },
                &scores,
                &[],
            ),
            training_images: self.seen,
            gallery: Some(gallery),
            origin: None,
            method,
            damage_head: self.damage_head,
        };
        let learning = keep.then(|| Learning {
            members: learnt,
            seen: self.seen,
            captures: self.captures,
            photos: self.photos,
            early: self.early,
            backbone_sha256: self.inspector.manifest.onnx_sha256.clone(),
            models_sha256: models_digest(&profile.detectors),
        });
        Ok((profile, learning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(values: &[f32]) -> AnomalyMap {
        AnomalyMap { size: 1, values: values.to_vec() }
    }

    #[test]
    fn a_lone_detector_keeps_its_units_and_an_ensemble_averages_on_the_common_scale() {
        let lone = combine(&mut [Ok((map(&[7.0, 9.0]), MapScale { mean: 5.0, std: 2.0 }))].into_iter()).unwrap();
        assert_eq!(lone.values, vec![7.0, 9.0]);
        // PaDiM-like units around 10, PatchCore-like around 0.1: each says "one spread
        // above normal" for the first pixel, so the average does too.
        let two = [Ok((map(&[12.0, 10.0]), MapScale { mean: 10.0, std: 2.0 })), Ok((map(&[0.2, 0.3]), MapScale { mean: 0.1, std: 0.1 }))];
        let ensemble = combine(&mut two.into_iter()).unwrap();
        assert!((ensemble.values[0] - 1.0).abs() < 1e-6 && (ensemble.values[1] - 1.0).abs() < 1e-6, "{:?}", ensemble.values);
        assert!(combine(&mut std::iter::empty()).is_err());
    }

    #[test]
    fn the_common_scale_is_the_mean_and_spread_of_held_out_image_scores() {
        let scale = MapScale::of(&[map(&[1.0, 3.0]), map(&[1.0, 5.0])]);
        assert_eq!(scale, MapScale { mean: 4.0, std: 1.0 });
        // Identical held-out scores (no spread) still give a usable, positive scale.
        assert!(MapScale::of(&[map(&[4.0, 4.0])]).std > 0.0);
    }
}
