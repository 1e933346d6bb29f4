//! The engine behind a Web Worker, so training and scoring never freeze the page.

use futures::StreamExt;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::engine::gpu::{GpuContext, GpuInspector, InspectError};
use crate::engine::inspector::{Inspector, Trainer};
use crate::engine::manifest::BackboneManifest;
use crate::engine::postprocess::Calibration;
use crate::engine::profile::Profile;
use crate::engine::EngineError;
use crate::eval::calibration::CalibrationScores;
use crate::eval::dataset::Sample;
use crate::eval::report::{evaluate_sample, EvalItem, Timing};
use crate::eval::session::EvalSession;
use crate::eval::threshold::ThresholdMethod;
use crate::protocol::{
    Backend, BackendStatus, DamagedPhoto, EvalModel, EvalReply, EvalRequest, InspectionReply, MaskFile, ProfileSummary, Reply, Request,
    TrainChoice, UploadedFile,
};
use crate::web::fetch_bytes;

const MANIFEST_URL: &str = "./efficientnet_lite0.manifest.json";

struct State {
    /// Loaded once and kept for the worker's whole life (it is leaked on purpose), so an
    /// evaluation's trainer can borrow it across messages.
    inspector: Option<&'static Inspector>,
    profile: Option<Profile>,
    evaluation: Option<Evaluation>,
    gpu: Gpu,
    backend: Backend,
}

/// The GPU backend, if this browser offers WebGPU.
enum Gpu {
    /// Not tried yet.
    Unknown,
    /// Working; `stale` until the active profile's models are uploaded.
    Ready { inspector: Box<GpuInspector>, stale: bool },
    /// Why it cannot be used (no WebGPU, no adapter, a failed kernel, a lost device).
    Unavailable(String),
}

impl State {
    /// Makes `profile` the active one; the GPU uploads it before its next inspection.
    fn set_profile(&mut self, profile: Profile) {
        self.profile = Some(profile);
        if let Gpu::Ready { stale, .. } = &mut self.gpu {
            *stale = true;
        }
    }

    fn status(&self, notice: Option<String>) -> BackendStatus {
        let (adapter, unavailable) = match &self.gpu {
            Gpu::Unknown => (None, None),
            Gpu::Ready { inspector, .. } => (Some(inspector.adapter_name()), None),
            Gpu::Unavailable(why) => (None, Some(why.clone())),
        };
        BackendStatus { active: self.backend, adapter, unavailable, notice }
    }

    /// Gives up on the GPU after a failure: inspections go on on the CPU.
    fn fall_back(&mut self, why: String) {
        self.gpu = Gpu::Unavailable(why.clone());
        self.backend = Backend::Cpu;
        post(&Reply::Backend(self.status(Some(format!(
            "The GPU stopped working, so inspection goes on on the CPU; nothing was lost. Reload the page to try the GPU again. (The GPU said: {why})"
        )))));
    }
}

/// A dataset evaluation under way, with the clock readings its timing needs.
struct Evaluation {
    session: EvalSession<'static>,
    trains: bool,
    started_ms: f64,
    /// Set when the first photo to judge arrives: everything before was preparation.
    judging_since_ms: Option<f64>,
    training_seconds: f64,
    judged: usize,
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(reply: &Reply) {
    match serde_wasm_bindgen::to_value(reply) {
        Ok(value) => {
            let _ = scope().post_message(&value);
        }
        Err(e) => gloo::console::error!(format!("cannot encode a reply: {e}")),
    }
}

use crate::engine::clock::now_ms;

async fn load_inspector() -> Result<(Inspector, Vec<u8>), String> {
    let manifest_bytes = fetch_bytes(MANIFEST_URL).await?;
    let manifest = BackboneManifest::from_json(
        MANIFEST_URL,
        std::str::from_utf8(&manifest_bytes).map_err(|_| format!("{MANIFEST_URL}: not UTF-8 text"))?,
    )
    .map_err(|e| e.to_string())?;
    let onnx = fetch_bytes(&format!("./{}", manifest.file)).await?;
    let inspector = Inspector::new(manifest, &onnx).map_err(|e| e.to_string())?;
    Ok((inspector, onnx))
}

fn train(state: &mut State, name: String, choice: TrainChoice, files: Vec<UploadedFile>) -> Result<Reply, EngineError> {
    let inspector = state.inspector.ok_or(EngineError::NotTrained)?;
    let mut trainer = Trainer::new(inspector, &choice.settings())?;
    let total = files.len();
    for (done, file) in files.iter().enumerate() {
        if let Err(e) = trainer.add(&file.name, &file.bytes) {
            post(&Reply::Skipped { message: e.to_string() });
        }
        post(&Reply::Progress { done: done + 1, total });
    }
    let profile = trainer.finish(&name)?;
    let bytes = profile.to_bytes()?;
    let summary = ProfileSummary::of(&profile);
    state.set_profile(profile);
    Ok(Reply::Trained { profile: summary, bytes })
}

/// Validates a profile file completely before it replaces the active one.
fn load(state: &mut State, file: &str, bytes: &[u8]) -> Result<Reply, EngineError> {
    let inspector = state.inspector.ok_or(EngineError::NotTrained)?;
    let profile = Profile::from_bytes(file, bytes, Some(&inspector.manifest().onnx_sha256))?;
    if profile.backbone.input_size != inspector.input_size() {
        return Err(EngineError::profile(
            file,
            format!("it works on {} px photos; this app runs at {} px", profile.backbone.input_size, inspector.input_size()),
            "Train the product again in this app",
        ));
    }
    let summary = ProfileSummary::of(&profile);
    state.set_profile(profile);
    Ok(Reply::Loaded { profile: summary })
}

/// Inspects on the active backend. A GPU failure (a lost device, a failed dispatch)
/// switches to the CPU for good and inspects the same photo there.
async fn inspect(state: &mut State, file: UploadedFile, tag: u32) -> Result<Reply, EngineError> {
    let inspector = state.inspector.ok_or(EngineError::NotTrained)?;
    let started = now_ms();
    let mut on_gpu = None;
    if state.backend == Backend::WebGpu {
        let profile = state.profile.as_ref().ok_or(EngineError::NotTrained)?;
        if let Gpu::Ready { inspector: gpu, stale } = &mut state.gpu {
            let uploaded = if *stale { gpu.load_profile(profile).await } else { Ok(()) };
            *stale = uploaded.is_err();
            on_gpu = Some(match uploaded {
                Ok(()) => gpu.inspect(profile, &file.name, &file.bytes).await,
                Err(e) => Err(InspectError::Gpu(e)),
            });
        }
    }
    let judged = match on_gpu {
        Some(Ok(judged)) => Some(judged),
        Some(Err(InspectError::Input(e))) => return Err(e),
        Some(Err(InspectError::Gpu(e))) => {
            state.fall_back(e.to_string());
            None
        }
        None => None,
    };
    let (result, stages, backend) = match judged {
        Some((result, stages)) => (result, stages, Backend::WebGpu),
        None => {
            let profile = state.profile.as_ref().ok_or(EngineError::NotTrained)?;
            let (result, stages) = inspector.inspect_timed(profile, &file.name, &file.bytes)?;
            (result, stages, Backend::Cpu)
        }
    };
    let profile = state.profile.as_ref().ok_or(EngineError::NotTrained)?;
    Ok(Reply::Inspected {
        result: InspectionReply {
            tag,
            file: file.name,
            score: result.score,
            normalised_score: result.normalised_score,
            damaged: result.damaged,
            threshold: profile.calibration.threshold,
            latency_ms: now_ms() - started,
            stages,
            backend,
            map_size: result.map.size as u32,
            heatmap: result.heatmap,
            outline: result.outline,
        },
    })
}

/// The size of this worker's WebAssembly memory.
fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64)
        .unwrap_or(0)
}

/// Switches backends on request; WebGPU only where it works.
fn set_backend(state: &mut State, backend: Backend) -> Reply {
    let notice = match (&state.gpu, backend) {
        (Gpu::Ready { .. }, _) | (_, Backend::Cpu) => {
            state.backend = backend;
            None
        }
        (Gpu::Unknown, Backend::WebGpu) => Some("WebGPU is still being tried; the CPU inspects until then".to_string()),
        (Gpu::Unavailable(why), Backend::WebGpu) => Some(format!("WebGPU cannot be used here: {why}. Inspecting on the CPU")),
    };
    Reply::Backend(state.status(notice))
}

/// Opens the GPU backend if the browser offers WebGPU: kernels, the backbone's buffers
/// and a warm-up run. Any failure leaves the CPU in charge, with the reason kept.
async fn start_gpu(inspector: &Inspector, onnx: &[u8]) -> Result<GpuInspector, String> {
    let gpu = js_sys::Reflect::get(&scope().navigator(), &"gpu".into()).map_err(|_| "the browser has no navigator.gpu".to_string())?;
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU".into());
    }
    let ctx = GpuContext::request().await.map_err(|e| e.to_string())?;
    GpuInspector::new(ctx, inspector, onnx).await.map_err(|e| e.to_string())
}

/// Scores the calibration photos once. Good photos: the ones training held out (every
/// 5th usable one), under a model refitted without them exactly as training did, since a
/// photo the model was fitted on scores lower than a new one would. Damaged photos are
/// scored by that same model, so both sides of the threshold are measured alike.
fn calibrate(state: &State, good: Vec<UploadedFile>, damaged: Vec<DamagedPhoto>) -> Result<Reply, EngineError> {
    let inspector = state.inspector.as_ref().ok_or(EngineError::NotTrained)?;
    let profile = state.profile.as_ref().ok_or(EngineError::NotTrained)?;
    let total = good.len() + damaged.len();
    let mut problems = Vec::new();
    let mut trainer = Trainer::like(inspector, profile)?;
    for (done, file) in good.iter().enumerate() {
        if let Err(e) = trainer.add(&file.name, &file.bytes) {
            problems.push(e.to_string());
        }
        post(&Reply::Progress { done: done + 1, total });
    }
    let (detectors, held_out) = trainer.held_out()?;
    let mut items: Vec<EvalItem> = held_out
        .into_iter()
        .enumerate()
        .map(|(i, map)| EvalItem {
            path: format!("held-out good photo {}", i + 1),
            anomalous: false,
            category: None,
            score: map.max(),
            mask: Some(vec![false; map.values.len()]),
            map: map.values,
        })
        .collect();
    let scoring = crate::engine::profile::Profile { detectors, ..profile.clone() };
    for (done, photo) in damaged.into_iter().enumerate() {
        let sample = Sample {
            path: photo.photo.name.clone(),
            anomalous: true,
            defect: "damaged".into(),
            mask: photo.mask.as_ref().map(|m| m.name.clone()),
            category: photo.category,
            background: None,
        };
        match evaluate_sample(inspector, &scoring, &sample, &photo.photo.bytes, photo.mask.map(|m| Ok(m.bytes)), &mut problems) {
            Ok(item) => items.push(item),
            Err(e) => problems.push(format!("{e}; it is left out of the calibration")),
        }
        post(&Reply::Progress { done: good.len() + done + 1, total });
    }
    let scores = CalibrationScores::from_items(&items, inspector.input_size() as usize);
    Ok(Reply::CalibrationScored { scores, problems })
}

fn set_calibration(state: &mut State, calibration: Calibration) -> Result<Reply, EngineError> {
    let profile = state.profile.as_mut().ok_or(EngineError::NotTrained)?;
    if ![calibration.threshold, calibration.min, calibration.max].iter().all(|v| v.is_finite()) || calibration.min > calibration.max {
        return Err(EngineError::Training("the chosen threshold is not a usable number; choose it again".into()));
    }
    profile.calibration = calibration;
    let bytes = profile.to_bytes()?;
    Ok(Reply::Calibrated { profile: ProfileSummary::of(profile), bytes })
}

/// Starts an evaluation, forgetting an earlier one.
fn begin_evaluation(state: &mut State, model: EvalModel, threshold: Option<ThresholdMethod>) -> Result<EvalReply, EngineError> {
    let inspector = state.inspector.ok_or(EngineError::NotTrained)?;
    let (session, trains) = match model {
        EvalModel::Active => {
            let profile = state.profile.clone().ok_or_else(|| {
                EngineError::Training("no product is loaded: choose or train one, or let the evaluation train on the dataset".into())
            })?;
            (EvalSession::with_profile(inspector, profile, threshold), false)
        }
        EvalModel::Train { name, method } => {
            (EvalSession::training(inspector, &name, &TrainChoice { method, even_brightness: false }.settings(), threshold)?, true)
        }
    };
    state.evaluation = Some(Evaluation { session, trains, started_ms: now_ms(), judging_since_ms: None, training_seconds: 0.0, judged: 0 });
    Ok(EvalReply::Began)
}

fn evaluation(state: &mut State) -> Result<&mut Evaluation, EngineError> {
    state
        .evaluation
        .as_mut()
        .ok_or_else(|| EngineError::Training("no evaluation is under way (the engine was restarted?); start it again".into()))
}

/// A photo's answer: what went wrong with its mask, or why it was left out.
fn done(result: Result<Vec<String>, EngineError>) -> EvalReply {
    EvalReply::Done { problems: result.unwrap_or_else(|e| vec![format!("{e}; left out")]) }
}

/// One step of an evaluation; see [`EvalRequest`] for the order.
fn evaluate(state: &mut State, request: EvalRequest) -> Result<EvalReply, EngineError> {
    Ok(match request {
        EvalRequest::Begin { model, threshold } => return begin_evaluation(state, model, threshold),
        EvalRequest::TrainImage { file } => {
            done(evaluation(state)?.session.add_training_image(&file.name, &file.bytes).map(|()| Vec::new()))
        }
        EvalRequest::Fit => EvalReply::Fitted { profile: ProfileSummary::of(evaluation(state)?.session.fit()?) },
        EvalRequest::Sample { sample, image, mask, calibration } => {
            let run = evaluation(state)?;
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
            let (value, explanation) = evaluation(state)?.session.choose_threshold()?;
            EvalReply::ThresholdChosen { value, explanation }
        }
        EvalRequest::Finish { gallery } => {
            let run = evaluation(state)?;
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
            state.evaluation = None;
            EvalReply::Finished(Box::new(outcome))
        }
    })
}

async fn handle(state: &mut State, request: Request) {
    let reply = match request {
        Request::Train { name, choice, files } => train(state, name, choice, files),
        Request::Load { file, bytes } => load(state, &file, &bytes),
        Request::Inspect { file, tag } => {
            inspect(state, file, tag).await.or_else(|e| Ok(Reply::Failed { message: e.to_string(), tag: Some(tag) }))
        }
        Request::Calibrate { good, damaged } => calibrate(state, good, damaged),
        Request::SetCalibration { calibration } => set_calibration(state, calibration),
        Request::Eval(step) => {
            let reply = evaluate(state, step).unwrap_or_else(|e| {
                // The page stops at a failed step: free the maps the evaluation holds.
                state.evaluation = None;
                EvalReply::Failed { message: e.to_string() }
            });
            Ok(Reply::Eval(reply))
        }
        Request::SetBackend { backend } => Ok(set_backend(state, backend)),
        Request::Stats => Ok(Reply::Stats { wasm_memory_bytes: wasm_memory_bytes() }),
        Request::LoseGpuDevice => {
            if let Gpu::Ready { inspector, .. } = &state.gpu {
                inspector.destroy_device();
            }
            return;
        }
    };
    post(&reply.unwrap_or_else(|e| Reply::Failed { message: e.to_string(), tag: None }));
}

/// Entry point of the worker bundle: load the model, try the GPU, then serve requests
/// one after another, in the order they came (a GPU inspection awaits the device, and
/// nothing may overtake it).
pub fn run() {
    console_error_panic_hook::set_once();
    let (requests, mut queue) = futures::channel::mpsc::unbounded::<Request>();
    let on_message =
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| match serde_wasm_bindgen::from_value(event.data()) {
            Ok(request) => {
                let _ = requests.unbounded_send(request);
            }
            Err(e) => post(&Reply::Failed { message: format!("the page sent a request the engine cannot read: {e}"), tag: None }),
        });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    wasm_bindgen_futures::spawn_local(async move {
        let mut state = State { inspector: None, profile: None, evaluation: None, gpu: Gpu::Unknown, backend: Backend::Cpu };
        match load_inspector().await {
            Ok((inspector, onnx)) => {
                let model = format!("{} ({} px)", inspector.manifest().name, inspector.manifest().input.size);
                let inspector: &'static Inspector = Box::leak(Box::new(inspector));
                state.inspector = Some(inspector);
                post(&Reply::Ready { model });
                state.gpu = match start_gpu(inspector, &onnx).await {
                    Ok(gpu) => {
                        state.backend = Backend::WebGpu;
                        Gpu::Ready { inspector: Box::new(gpu), stale: true }
                    }
                    Err(why) => Gpu::Unavailable(why),
                };
                post(&Reply::Backend(state.status(None)));
            }
            Err(message) => post(&Reply::Failed { message: format!("The anomaly model could not be loaded: {message}"), tag: None }),
        }
        while let Some(request) = queue.next().await {
            handle(&mut state, request).await;
        }
    });
}
