//! The engine behind a Web Worker, so training and scoring never freeze the page.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

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
    DamagedPhoto, EvalModel, EvalReply, EvalRequest, InspectionReply, MaskFile, ProfileSummary, Reply, Request, TrainChoice, UploadedFile,
};
use crate::web::fetch_bytes;

const MANIFEST_URL: &str = "./efficientnet_lite0.manifest.json";

#[derive(Default)]
struct State {
    /// Loaded once and kept for the worker's whole life (it is leaked on purpose), so an
    /// evaluation's trainer can borrow it across messages.
    inspector: Option<&'static Inspector>,
    profile: Option<Profile>,
    evaluation: Option<Evaluation>,
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

fn now_ms() -> f64 {
    scope().performance().map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

async fn load_inspector() -> Result<Inspector, String> {
    let manifest_bytes = fetch_bytes(MANIFEST_URL).await?;
    let manifest = BackboneManifest::from_json(
        MANIFEST_URL,
        std::str::from_utf8(&manifest_bytes).map_err(|_| format!("{MANIFEST_URL}: not UTF-8 text"))?,
    )
    .map_err(|e| e.to_string())?;
    let onnx = fetch_bytes(&format!("./{}", manifest.file)).await?;
    Inspector::new(manifest, &onnx).map_err(|e| e.to_string())
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
    state.profile = Some(profile);
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
    state.profile = Some(profile);
    Ok(Reply::Loaded { profile: summary })
}

fn inspect(state: &State, file: UploadedFile, tag: u32) -> Result<Reply, EngineError> {
    let inspector = state.inspector.ok_or(EngineError::NotTrained)?;
    let profile = state.profile.as_ref().ok_or(EngineError::NotTrained)?;
    let started = now_ms();
    let result = inspector.inspect(profile, &file.name, &file.bytes)?;
    Ok(Reply::Inspected {
        result: InspectionReply {
            tag,
            file: file.name,
            score: result.score,
            normalised_score: result.normalised_score,
            damaged: result.damaged,
            threshold: profile.calibration.threshold,
            latency_ms: now_ms() - started,
            map_size: result.map.size as u32,
            heatmap: result.heatmap,
            outline: result.outline,
        },
    })
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
        EvalModel::Train { name, method } => (EvalSession::training(inspector, &name, &TrainChoice { method, even_brightness: false }.settings(), threshold)?, true),
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
        EvalRequest::TrainImage { file } => done(evaluation(state)?.session.add_training_image(&file.name, &file.bytes).map(|()| Vec::new())),
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

fn handle(state: &Rc<RefCell<State>>, event: MessageEvent) {
    let request: Request = match serde_wasm_bindgen::from_value(event.data()) {
        Ok(r) => r,
        Err(e) => {
            return post(&Reply::Failed { message: format!("the page sent a request the engine cannot read: {e}"), tag: None })
        }
    };
    let mut state = state.borrow_mut();
    let reply = match request {
        Request::Train { name, choice, files } => train(&mut state, name, choice, files),
        Request::Load { file, bytes } => load(&mut state, &file, &bytes),
        Request::Inspect { file, tag } => {
            inspect(&state, file, tag).or_else(|e| Ok(Reply::Failed { message: e.to_string(), tag: Some(tag) }))
        }
        Request::Calibrate { good, damaged } => calibrate(&state, good, damaged),
        Request::SetCalibration { calibration } => set_calibration(&mut state, calibration),
        Request::Eval(step) => {
            let reply = evaluate(&mut state, step).unwrap_or_else(|e| {
                // The page stops at a failed step: free the maps the evaluation holds.
                state.evaluation = None;
                EvalReply::Failed { message: e.to_string() }
            });
            Ok(Reply::Eval(reply))
        }
    };
    post(&reply.unwrap_or_else(|e| Reply::Failed { message: e.to_string(), tag: None }));
}

/// Entry point of the worker bundle: load the model, then serve requests in order.
pub fn run() {
    console_error_panic_hook::set_once();
    let state = Rc::new(RefCell::new(State::default()));
    let handler_state = state.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event| handle(&handler_state, event));
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    wasm_bindgen_futures::spawn_local(async move {
        match load_inspector().await {
            Ok(inspector) => {
                let model = format!("{} ({} px)", inspector.manifest().name, inspector.manifest().input.size);
                state.borrow_mut().inspector = Some(Box::leak(Box::new(inspector)));
                post(&Reply::Ready { backend: "CPU (tract)".into(), model });
            }
            Err(message) => {
                post(&Reply::Failed { message: format!("The anomaly model could not be loaded: {message}"), tag: None })
            }
        }
    });
}
