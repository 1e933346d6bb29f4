//! The engine as a request/reply service: a [`Call`] in, [`Event`]s out, each carrying
//! the call's id. It owns the inspector, the active profile, the CPU and GPU backends
//! (with the one fallback rule), calibration and dataset evaluation. It compiles
//! natively and to wasm32 and knows nothing of the browser: the Web Worker is a thin
//! loop around it, and native tests drive it exactly as the page does.

mod gpu;

pub use gpu::{fallback_notice, Attempt, Gpu, GpuBackend};

use crate::engine::clock::{now_ms, StageTimes};
use crate::engine::damage_head::{DamageHead, Example, DAMAGE_WEIGHT};
use crate::engine::embed::FeatureMap;
use crate::engine::identify::{identify_each, Gallery, GlobalEmbedding};
use crate::engine::inspector::{Inspector, Trainer};
use crate::engine::learning::Learning;
use crate::engine::postprocess::{Band, Calibration};
use crate::engine::profile::{LearntHead, Profile};
use crate::engine::EngineError;
use crate::eval::calibration::CalibrationScores;
use crate::eval::dataset::Sample;
use crate::eval::outcome::EvalError;
use crate::eval::report::{EvalItem, Timing};
use crate::eval::session::{evaluate_damaged, EvalSession};
use crate::eval::threshold::ThresholdMethod;
use crate::protocol::{
    Backend, Call, DamagedPhoto, EvalModel, EvalReply, EvalRequest, Event, Failure, FailureKind, InspectionReply, KnownProfile, MaskFile,
    ProductMatch, ProfileSummary, Reply, Request, Status, TrainChoice, UploadedFile,
};

/// Why a call failed, typed; [`ServiceError::failure`] is what crosses to the page.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Evaluation(#[from] EvalError),
    #[error("no product is loaded: choose or train one first")]
    NoProfile,
    #[error("no evaluation is under way (it was cancelled, or the engine was restarted); start it again")]
    NoEvaluation,
    #[error("no product on this device can be recognised yet: train one (products trained before recognition came must be trained again), or choose the product by hand")]
    NothingToRecognise,
}

impl ServiceError {
    pub fn failure(&self) -> Failure {
        let engine_kind = |e: &EngineError| match e {
            EngineError::BackboneNotLoaded(_) => FailureKind::BackboneNotLoaded,
            EngineError::OtherBackbone { .. } => FailureKind::OtherBackbone,
            EngineError::Learning { .. } => FailureKind::LearningState,
            _ => FailureKind::Refused,
        };
        let kind = match self {
            ServiceError::Engine(e) => engine_kind(e),
            ServiceError::Evaluation(_) | ServiceError::NoEvaluation => FailureKind::Evaluation,
            ServiceError::NoProfile | ServiceError::NothingToRecognise => FailureKind::NoProfile,
        };
        Failure::new(kind, self.to_string())
    }
}

type Result<T> = std::result::Result<T, ServiceError>;

/// A dataset evaluation under way, with the clock readings its timing needs.
struct Evaluation {
    session: EvalSession,
    trains: bool,
    started_ms: f64,
    /// Set when the first photo to judge arrives: everything before was preparation.
    judging_since_ms: Option<f64>,
    training_seconds: f64,
    judged: usize,
}

/// A product photos can be identified as (`Request::Recognise`).
struct KnownProduct {
    id: String,
    gallery: Gallery,
    /// Its photos are embedded with brightness evened, as it was trained.
    even_brightness: bool,
}

/// A photo's feature maps as the active profile sees them, kept from identification for
/// a CPU inspection of the same photo.
type Features = (Vec<FeatureMap>, (u32, u32), StageTimes);

/// Where a call's progress and notices go while it runs.
pub type Emit<'a> = dyn FnMut(Event) + 'a;

pub struct Service<G> {
    /// The backbone; Err says why it could not be loaded (None: still loading).
    inspector: Option<std::result::Result<Inspector, String>>,
    profile: Option<Profile>,
    /// The active profile's product id in the page's library, when the page gave it.
    product: Option<String>,
    known: Vec<KnownProduct>,
    evaluation: Option<Evaluation>,
    gpu: Gpu<G>,
    backend: Backend,
    /// The engine's memory in bytes, as the host measures it (for the benchmark).
    memory: fn() -> u64,
    /// The damage head the last calibration of the active profile learnt, which the
    /// calibration applied to it brings along.
    learnt_head: Option<LearntHead>,
}

impl<G: GpuBackend> Service<G> {
    pub fn new(memory: fn() -> u64) -> Self {
        Service {
            inspector: None,
            profile: None,
            product: None,
            known: Vec::new(),
            evaluation: None,
            gpu: Gpu::Unknown,
            backend: Backend::Cpu,
            memory,
            learnt_head: None,
        }
    }

    /// The backbone loaded (or why not); the news for the page.
    pub fn backbone_loaded(&mut self, loaded: std::result::Result<Inspector, String>) -> Status {
        let status = match &loaded {
            Ok(inspector) => Status::Ready { model: format!("{} ({} px)", inspector.manifest().name, inspector.input_size()) },
            Err(why) => Status::Unavailable { message: format!("The anomaly model could not be loaded: {why}") },
        };
        self.inspector = Some(loaded);
        status
    }

    /// The inspector, for starting a GPU backend from it.
    pub fn inspector(&self) -> std::result::Result<&Inspector, EngineError> {
        match &self.inspector {
            Some(Ok(inspector)) => Ok(inspector),
            Some(Err(why)) => Err(EngineError::BackboneNotLoaded(Some(why.clone()))),
            None => Err(EngineError::BackboneNotLoaded(None)),
        }
    }

    /// The GPU backend started (it becomes the active one) or why it cannot be.
    pub fn gpu_started(&mut self, gpu: std::result::Result<G, String>) -> Status {
        self.gpu = match gpu {
            Ok(backend) => {
                self.backend = Backend::WebGpu;
                Gpu::Ready { backend, stale: true }
            }
            Err(why) => Gpu::Unavailable(why),
        };
        Status::Backend(self.gpu.status(self.backend, None))
    }

    /// Serves one call: progress and notices go to `emit` as they happen, then exactly
    /// one `Done` or `Failed` event with the call's id.
    pub async fn handle(&mut self, call: Call, emit: &mut Emit<'_>) {
        let id = call.id;
        let result = self.serve(id, call.request, emit).await;
        emit(match result {
            Ok(reply) => Event::Done { id, reply: Box::new(reply) },
            Err(e) => Event::Failed { id, error: e.failure() },
        });
    }

    async fn serve(&mut self, id: u64, request: Request, emit: &mut Emit<'_>) -> Result<Reply> {
        match request {
            Request::Train { name, product, choice, files } => {
                let trainer = Trainer::new(self.inspector()?, &choice.settings())?;
                self.learn_photos(id, trainer, &name, product, &files, emit)
            }
            Request::Learn { name, product, profile, learning, files } => {
                let inspector = self.inspector()?;
                let profile = Profile::from_bytes(&profile.name, &profile.bytes, Some(&inspector.manifest().onnx_sha256))?;
                let trainer = Trainer::resume(inspector, &profile, Learning::from_bytes(&learning.name, &learning.bytes)?)?;
                self.learn_photos(id, trainer, &name, product, &files, emit)
            }
            Request::Load { file, product, bytes } => self.load(&file, product, &bytes),
            Request::Inspect { file, identify } => self.inspect(file, identify, emit).await,
            Request::Recognise { products } => self.recognise(products),
            Request::Calibrate { good, damaged } => self.calibrate(id, &good, damaged, emit),
            Request::SetCalibration { calibration } => self.set_calibration(calibration),
            Request::Eval(step) => {
                let reply = self.evaluate(step);
                if reply.is_err() {
                    // The page stops at a failed step: free the maps the evaluation holds.
                    self.evaluation = None;
                }
                reply.map(Reply::Eval)
            }
            Request::SetBackend { backend } => Ok(self.set_backend(backend)),
            Request::Stats => Ok(Reply::Stats { wasm_memory_bytes: (self.memory)() }),
            Request::LoseGpuDevice => {
                if let Gpu::Ready { backend, .. } = &self.gpu {
                    backend.destroy_device();
                }
                Ok(Reply::Ack)
            }
        }
    }

    /// Makes `profile` (of library product `product`) the active one; the GPU uploads it
    /// before its next inspection.
    fn activate(&mut self, profile: Profile, product: Option<String>) -> &Profile {
        self.gpu.profile_changed();
        self.learnt_head = None;
        self.product = product;
        self.profile.insert(profile)
    }

    fn active(&self) -> Result<&Profile> {
        self.profile.as_ref().ok_or(ServiceError::NoProfile)
    }

    /// Adds `files` to `trainer` (a photo it cannot use is skipped, with the reason) and
    /// finishes: the profile becomes the active one, and comes back with its learning state.
    fn learn_photos(
        &mut self,
        id: u64,
        mut trainer: Trainer,
        name: &str,
        product: Option<String>,
        files: &[UploadedFile],
        emit: &mut Emit<'_>,
    ) -> Result<Reply> {
        let total = files.len();
        let mut added = 0;
        for (done, file) in files.iter().enumerate() {
            match trainer.add(&file.name, &file.bytes) {
                Ok(()) => added += 1,
                Err(e) => emit(Event::Skipped { id, message: e.to_string() }),
            }
            emit(Event::Progress { id, done: done + 1, total });
        }
        let (profile, learning) = trainer.finish_learning(name)?;
        let (bytes, learning) = (profile.to_bytes()?, learning.to_bytes()?);
        Ok(Reply::Trained { profile: ProfileSummary::of(self.activate(profile, product)), bytes, learning, added })
    }

    /// Validates a profile file completely before it replaces the active one.
    fn load(&mut self, file: &str, product: Option<String>, bytes: &[u8]) -> Result<Reply> {
        let inspector = self.inspector()?;
        let profile = Profile::from_bytes(file, bytes, Some(&inspector.manifest().onnx_sha256))?;
        if profile.backbone.input_size != inspector.input_size() {
            return Err(EngineError::profile(
                file,
                format!("it works on {} px photos; this app runs at {} px", profile.backbone.input_size, inspector.input_size()),
                "Train the product again in this app",
            )
            .into());
        }
        Ok(Reply::Loaded { profile: ProfileSummary::of(self.activate(profile, product)) })
    }

    /// The products photos are identified among from now on: each profile is checked as
    /// a load would, and only its gallery is kept.
    fn recognise(&mut self, products: Vec<KnownProfile>) -> Result<Reply> {
        let inspector = self.inspector()?;
        let (sha, size) = (inspector.manifest().onnx_sha256.clone(), inspector.input_size());
        let (mut known, mut skipped) = (Vec::new(), Vec::new());
        for KnownProfile { product, profile: file } in products {
            match Profile::from_bytes(&file.name, &file.bytes, Some(&sha)) {
                Ok(p) if p.backbone.input_size != size => skipped.push(format!(
                    "{}: it works on {} px photos and this app at {size} px, so it cannot be recognised; train it again",
                    file.name, p.backbone.input_size
                )),
                Ok(Profile { gallery: Some(gallery), even_brightness, .. }) => {
                    known.push(KnownProduct { id: product, gallery, even_brightness })
                }
                Ok(_) => skipped.push(format!("{}: it was trained before products could be recognised; train it again", file.name)),
                Err(e) => skipped.push(e.to_string()),
            }
        }
        self.known = known;
        Ok(Reply::Recognising { products: self.known.iter().map(|k| k.id.clone()).collect(), skipped })
    }

    /// Which known product `file` shows ([`Self::inspect`] has checked there are some).
    /// The photo is embedded once per brightness setting the products were trained with;
    /// the feature maps made as the active profile sees photos come back too, so a CPU
    /// inspection need not run the backbone again.
    /// `gpu`: the embedding the GPU read back with its inspection, as the active profile
    /// sees photos.
    fn identify(&self, file: &UploadedFile, gpu: Option<GlobalEmbedding>) -> Result<(ProductMatch, Option<Features>)> {
        let inspector = self.inspector()?;
        let active_even = self.profile.as_ref().map(|p| p.even_brightness);
        let mut embeddings: [Option<GlobalEmbedding>; 2] = [None, None];
        if let (Some(even), Some(embedding)) = (active_even, gpu) {
            embeddings[usize::from(even)] = Some(embedding);
        }
        let mut kept = None;
        for even in [false, true] {
            if !self.known.iter().any(|k| k.even_brightness == even) || embeddings[usize::from(even)].is_some() {
                continue;
            }
            let mut times = StageTimes::default();
            let (maps, dims) = inspector.timed_feature_maps(&file.name, &file.bytes, even, &mut times)?;
            embeddings[usize::from(even)] = Some(GlobalEmbedding::from_maps(&maps)?);
            if active_even == Some(even) {
                kept = Some((maps, dims, times));
            }
        }
        let candidates: Vec<_> =
            self.known.iter().map(|k| embeddings[usize::from(k.even_brightness)].as_ref().map(|e| (&k.gallery, e))).collect();
        let id = identify_each(&candidates);
        let name = |index: usize| self.known[index].id.clone();
        let identified = ProductMatch {
            product: id.best.map(|b| name(b.index)),
            confidence: id.best.map_or(0.0, |b| b.confidence),
            runner_up: id.runner_up.map(|r| name(r.index)),
            runner_up_relative: id.runner_up.map(|r| r.relative),
        };
        Ok((identified, kept))
    }

    /// Inspects on the active backend, after identifying the product when asked. On the
    /// CPU, identification and inspection share one backbone run; on the GPU, the frame's
    /// feature maps come back with its map and identify it afterwards. A GPU failure (a
    /// lost device, a failed dispatch) switches to the CPU for good, says so once, and
    /// inspects the same photo there.
    async fn inspect(&mut self, file: UploadedFile, identify: bool, emit: &mut Emit<'_>) -> Result<Reply> {
        let started = now_ms();
        self.inspector()?;
        if identify && self.known.is_empty() {
            return Err(ServiceError::NothingToRecognise);
        }
        let on_gpu = self.backend == Backend::WebGpu && matches!(self.gpu, Gpu::Ready { .. }) && self.profile.is_some();
        let (mut identified, mut features) = (None, None);
        if identify && !on_gpu {
            let (found, maps) = self.identify(&file, None)?;
            if let Some(reply) = self.unless_held(&file.name, &found, started) {
                return Ok(reply);
            }
            (identified, features) = (Some(found), maps);
        }
        // A shot unfit to judge gets CHECK and the reason, not a score (on the GPU with
        // identification, once the product is known).
        if identified.is_some() || !identify {
            if let Some(reply) = self.capture_check(&file, &identified, started)? {
                return Ok(reply);
            }
        }
        let profile = self.profile.as_ref().ok_or(ServiceError::NoProfile)?;
        let attempt = match self.backend {
            // A damage head is fused on the CPU only: a product with one is judged there.
            Backend::WebGpu if profile.damage_head.is_none() => {
                self.gpu.try_inspect(profile, &file.name, &file.bytes, identify && identified.is_none()).await
            }
            _ => Attempt::NotTried,
        };
        let mut judged = match attempt {
            Attempt::Judged(gpu) => Some(gpu),
            Attempt::Refused(e) => return Err(e.into()),
            Attempt::DeviceFailed(why) => {
                self.gpu = Gpu::Unavailable(why.clone());
                self.backend = Backend::Cpu;
                emit(Event::Status(Status::Backend(self.gpu.status(Backend::Cpu, Some(fallback_notice(&why))))));
                None
            }
            Attempt::NotTried => None,
        };
        if identify && identified.is_none() {
            // The GPU's own maps identify the photo (or, after a GPU failure, the CPU's).
            let (found, maps) = self.identify(&file, judged.as_mut().and_then(|j| j.embedding.take()))?;
            if let Some(reply) = self.unless_held(&file.name, &found, started) {
                return Ok(reply);
            }
            identified = Some(found);
            features = maps;
            if let Some(reply) = self.capture_check(&file, &identified, started)? {
                return Ok(reply);
            }
        }
        let profile = self.active()?;
        let (result, stages, backend) = match judged {
            Some(gpu) => (gpu.inspection, gpu.times, Backend::WebGpu),
            None => {
                let inspector = self.inspector()?;
                let (result, stages) = match features.take() {
                    Some((maps, dims, times)) => inspector.inspect_features(profile, &maps, dims, times)?,
                    None => inspector.inspect_timed(profile, &file.name, &file.bytes)?,
                };
                (result, stages, Backend::Cpu)
            }
        };
        Ok(Reply::Inspected {
            result: InspectionReply {
                file: file.name,
                score: result.score,
                normalised_score: result.normalised_score,
                band: result.band,
                capture: None,
                identified,
                threshold: profile.calibration.threshold,
                latency_ms: now_ms() - started,
                stages,
                backend,
                map_size: result.map.size as u32,
                heatmap: result.heatmap,
                outline: result.outline,
                damage: result.damage,
            },
        })
    }

    /// The reply for a photo that is not of the product held: an unknown product (CHECK,
    /// not judged) or another product (to be loaded and asked again); None when it is.
    fn unless_held(&self, file: &str, found: &ProductMatch, started: f64) -> Option<Reply> {
        match &found.product {
            None => {
                let reason = "not a product on this device: choose the product, or teach it as a new one";
                let threshold = self.profile.as_ref().map_or(0.0, |p| p.calibration.threshold);
                Some(self.unjudged(file.to_string(), reason, threshold, started, Some(found.clone())))
            }
            Some(product) if Some(product) != self.product.as_ref() || self.profile.is_none() => {
                Some(Reply::Recognised { file: file.to_string(), identified: found.clone() })
            }
            Some(_) => None,
        }
    }

    /// CHECK with the reason for a shot unfit to judge (blurred, dark, glaring).
    fn capture_check(&self, file: &UploadedFile, identified: &Option<ProductMatch>, started: f64) -> Result<Option<Reply>> {
        let profile = self.active()?;
        let problem = self.inspector()?.capture_problem(profile, &file.name, &file.bytes)?;
        Ok(problem.map(|p| self.unjudged(file.name.clone(), p, profile.calibration.threshold, started, identified.clone())))
    }

    /// A photo that was not judged: CHECK, the reason, and no score or map.
    fn unjudged(&self, file: String, reason: &str, threshold: f32, started: f64, identified: Option<ProductMatch>) -> Reply {
        Reply::Inspected {
            result: InspectionReply {
                file,
                score: 0.0,
                normalised_score: 0.0,
                band: Band::Check,
                capture: Some(reason.to_string()),
                identified,
                threshold,
                latency_ms: now_ms() - started,
                stages: StageTimes::default(),
                backend: self.backend,
                map_size: 1,
                heatmap: vec![0; 4],
                outline: vec![0],
                damage: None,
            },
        }
    }

    /// Switches backends on request; WebGPU only where it works.
    fn set_backend(&mut self, backend: Backend) -> Reply {
        let notice = match (&self.gpu, backend) {
            (Gpu::Ready { .. }, _) | (_, Backend::Cpu) => {
                self.backend = backend;
                None
            }
            (Gpu::Unknown, Backend::WebGpu) => Some("WebGPU is still being tried; the CPU inspects until then".to_string()),
            (Gpu::Unavailable(why), Backend::WebGpu) => Some(format!("WebGPU cannot be used here: {why}. Inspecting on the CPU")),
        };
        Reply::Backend(self.gpu.status(self.backend, notice))
    }

    /// Scores the calibration photos once. Good photos: the ones training held out (every
    /// 5th usable one), under a model refitted without them exactly as training did, since
    /// a photo the model was fitted on scores lower than a new one would. Damaged photos
    /// are scored by that same model, so both sides of the threshold are measured alike.
    fn calibrate(&mut self, id: u64, good: &[UploadedFile], damaged: Vec<DamagedPhoto>, emit: &mut Emit<'_>) -> Result<Reply> {
        let inspector = self.inspector()?;
        let profile = self.active()?;
        let total = good.len() + damaged.len();
        let mut problems = Vec::new();
        let mut trainer = Trainer::like(inspector, profile)?;
        for (done, file) in good.iter().enumerate() {
            if let Err(e) = trainer.add(&file.name, &file.bytes) {
                problems.push(e.to_string());
            }
            emit(Event::Progress { id, done: done + 1, total });
        }
        let (detectors, held_out) = trainer.held_out()?;
        let mut items: Vec<EvalItem> = held_out.into_iter().enumerate().map(|(i, map)| EvalItem::held_out_good(i, map)).collect();
        let scoring = Profile { detectors, damage_head: None, ..profile.clone() };
        let mut examples: Vec<Example> = trainer.held_out_grids().iter().cloned().map(Example::good).collect();
        let good_examples = examples.len();
        for (done, photo) in damaged.into_iter().enumerate() {
            let sample = Sample {
                path: photo.photo.name.clone(),
                anomalous: true,
                defect: "damaged".into(),
                mask: photo.mask.as_ref().map(|m| m.name.clone()),
                category: photo.category,
                background: None,
            };
            let mask = photo.mask.map(|m| Ok(m.bytes));
            match evaluate_damaged(inspector, &scoring, &sample, &photo.photo.bytes, mask, &mut problems) {
                Ok((item, example)) => {
                    items.push(item);
                    examples.push(example);
                }
                Err(e) => problems.push(format!("{e}; it is left out of the calibration")),
            }
            emit(Event::Progress { id, done: good.len() + done + 1, total });
        }
        // What damage looks like for this product, from the damaged photos: kept until
        // the calibration is applied (SetCalibration), which puts it in the profile.
        let damaged = examples.len() - good_examples;
        let scores = CalibrationScores::from_items(&items, inspector.input_size() as usize);
        self.learnt_head = match (damaged, good_examples) {
            (0, _) => None,
            (_, 0) => {
                problems.push("no damage head was learnt: the product has too few good photos to hold some out".into());
                None
            }
            _ => match DamageHead::fit(&examples) {
                Ok(head) => Some(LearntHead { head, weight: DAMAGE_WEIGHT, photos: damaged }),
                Err(e) => {
                    problems.push(format!("no damage head was learnt: {e}"));
                    None
                }
            },
        };
        Ok(Reply::CalibrationScored { scores, problems })
    }

    fn set_calibration(&mut self, calibration: Calibration) -> Result<Reply> {
        let profile = self.profile.as_mut().ok_or(ServiceError::NoProfile)?;
        if ![calibration.threshold, calibration.min, calibration.max].iter().all(|v| v.is_finite()) || calibration.min > calibration.max {
            return Err(EvalError::Threshold("the chosen threshold is not a usable number; choose it again".into()).into());
        }
        profile.calibration = calibration;
        if let Some(head) = &self.learnt_head {
            profile.damage_head = Some(head.clone());
        }
        let bytes = profile.to_bytes()?;
        Ok(Reply::Calibrated { profile: ProfileSummary::of(profile), bytes })
    }

    /// Starts an evaluation, forgetting an earlier one.
    fn begin_evaluation(&mut self, model: EvalModel, threshold: Option<ThresholdMethod>) -> Result<EvalReply> {
        self.evaluation = None;
        let inspector = self.inspector()?;
        let (session, trains) = match model {
            EvalModel::Active => (EvalSession::with_profile(inspector, self.active()?.clone(), threshold), false),
            EvalModel::Train { name, method } => {
                let settings = TrainChoice { method, ..TrainChoice::default() }.settings();
                (EvalSession::training(inspector, &name, &settings, threshold)?, true)
            }
        };
        self.evaluation =
            Some(Evaluation { session, trains, started_ms: now_ms(), judging_since_ms: None, training_seconds: 0.0, judged: 0 });
        Ok(EvalReply::Began)
    }

    fn evaluation(&mut self) -> Result<&mut Evaluation> {
        self.evaluation.as_mut().ok_or(ServiceError::NoEvaluation)
    }

    /// One step of an evaluation; see [`EvalRequest`] for the order.
    fn evaluate(&mut self, request: EvalRequest) -> Result<EvalReply> {
        Ok(match request {
            EvalRequest::Begin { model, threshold } => return self.begin_evaluation(model, threshold),
            EvalRequest::TrainImage { file } => {
                done(self.evaluation()?.session.add_training_image(&file.name, &file.bytes).map(|()| Vec::new()))
            }
            EvalRequest::Fit => EvalReply::Fitted { profile: Box::new(ProfileSummary::of(self.evaluation()?.session.fit()?)) },
            EvalRequest::Sample { sample, image, mask, calibration } => {
                let run = self.evaluation()?;
                if !calibration && run.judging_since_ms.is_none() {
                    let now = now_ms();
                    run.training_seconds = (now - run.started_ms) / 1000.0;
                    run.judging_since_ms = Some(now);
                }
                let mask = match mask {
                    MaskFile::None => None,
                    MaskFile::File(file) => Some(Ok(file.bytes)),
                    MaskFile::Unreadable(why) => Some(Err(why)),
                };
                let result = run.session.add_sample(&sample, &image.bytes, mask, calibration);
                if result.is_ok() && !calibration {
                    run.judged += 1;
                }
                done(result)
            }
            EvalRequest::ChooseThreshold => {
                let (value, explanation) = self.evaluation()?.session.choose_threshold()?;
                EvalReply::ThresholdChosen { value, explanation }
            }
            EvalRequest::Finish { gallery } => {
                let run = self.evaluation()?;
                // Timing as `damagelens eval` reports it: only when the profile was trained here.
                let timing = match (run.trains, run.judging_since_ms, run.session.evaluated_profile()) {
                    (true, Some(since), Some(profile)) => Some(Timing {
                        training_images: profile.training_images,
                        training_seconds: run.training_seconds,
                        inspect_ms_per_image: (now_ms() - since) / run.judged.max(1) as f64,
                    }),
                    _ => None,
                };
                let outcome = run.session.outcome(timing, gallery)?;
                // The maps of a large dataset weigh hundreds of MB: free them now.
                self.evaluation = None;
                EvalReply::Finished(Box::new(outcome))
            }
            EvalRequest::Cancel => {
                self.evaluation = None;
                EvalReply::Cancelled
            }
        })
    }

    /// The active profile (tests compare it across calls).
    pub fn active_profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }
}

/// A photo's answer: what went wrong with its mask, or why it was left out.
fn done(result: std::result::Result<Vec<String>, EvalError>) -> EvalReply {
    EvalReply::Done { problems: result.unwrap_or_else(|e| vec![format!("{e}; left out")]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_their_kind() {
        assert_eq!(ServiceError::from(EngineError::BackboneNotLoaded(None)).failure().kind, FailureKind::BackboneNotLoaded);
        let other = EngineError::OtherBackbone { file: "mug.dlprofile".into(), found: "lite2 abcd".into() };
        let failure = ServiceError::from(other).failure();
        assert_eq!(failure.kind, FailureKind::OtherBackbone);
        assert!(failure.message.contains("mug.dlprofile") && failure.message.contains("Train the product again"), "{}", failure.message);
        assert_eq!(ServiceError::NoProfile.failure().kind, FailureKind::NoProfile);
        assert_eq!(ServiceError::from(EvalError::NothingJudged).failure().kind, FailureKind::Evaluation);
    }
}
