//! Evaluate on a dataset folder (MVTec AD, BTAD or plain layout), as
//! `damagelens eval` does: train on its good photos or take the current product, choose
//! the threshold, judge the test photos, and show the twofold report by category with its
//! curves and the worst cases; export it as the CLI's JSON and CSV.
//!
//! The folder is streamed into the engine one photo at a time, each step awaiting its
//! answer, so a dataset of hundreds of photos never sits in memory twice, progress is
//! exact and Cancel stops between two photos.

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use plotters::prelude::SeriesLabelPosition;
use wasm_bindgen::JsCast;

use super::client;
use super::eval_charts::{self, Chart, Guide};
use super::files::{self, blob_of_type, picked_files, read_file};
use super::state::AppState;
use crate::eval::dataset::{parse, Dataset, Sample};
use crate::eval::outcome::EvalOutcome;
use crate::eval::report::{split_calibration, Metrics, PlotLine, Report, AUPRO_MAX_FPR, CALIBRATION_PER_DEFECT};
use crate::eval::threshold::{ThresholdMethod, NAMED_METHODS};
use crate::protocol::{EvalModel, EvalReply, EvalRequest, FailureKind, MaskFile, MethodChoice, Reply, Request, UploadedFile};

/// Worst cases shown of each kind: good items scoring highest, damaged scoring lowest.
const GALLERY_PER_SIDE: usize = 4;
/// Problems reported one by one before the rest are only counted: a folder with a
/// hundred missing masks must not bury the page.
const MAX_PROBLEMS_SHOWN: usize = 8;
/// The threshold select's value for "keep the profile's own".
const PROFILE_THRESHOLD: &str = "profile";

/// Why an evaluation ended early.
enum Stop {
    /// Cancelled, or the engine stopped (which is reported where it happens).
    Cancelled,
    Failed(String),
}

/// The engine as one evaluation talks to it: one step at a time, each awaiting its own
/// answer. Cancel takes effect between two steps.
struct Steps {
    state: AppState,
    /// This evaluation's number; Cancel (or a newer evaluation) moves `runs` on.
    this_run: u32,
    runs: StoredValue<u32>,
}

impl Steps {
    async fn ask(&self, request: EvalRequest) -> Result<EvalReply, Stop> {
        if self.runs.get_value() != self.this_run {
            return Err(Stop::Cancelled);
        }
        match client::call(self.state, Request::Eval(request), None).await {
            Ok(Reply::Eval(reply)) => Ok(reply),
            Ok(_) => Err(Stop::Failed("The engine answered out of order. Start the evaluation again.".into())),
            Err(failure) if failure.kind == FailureKind::EngineStopped => Err(Stop::Cancelled),
            Err(failure) => Err(Stop::Failed(failure.message)),
        }
    }
}

/// The chosen folder: its name, its files by path inside it, and their layout.
struct Folder {
    name: String,
    files: HashMap<String, web_sys::File>,
    dataset: Dataset,
}

/// More files than any dataset this page is for: a folder this large is most likely
/// the wrong one (a home folder), and listing it would only stall the page.
const MAX_FOLDER_FILES: usize = 50_000;

fn too_many_files() -> String {
    format!("The folder holds more than {MAX_FOLDER_FILES} files. Choose the folder of one dataset (the one with train/ and test/).")
}

/// The files of a folder picked with the folder picker, by path from the folder's parent.
fn picked_folder(files: Vec<web_sys::File>) -> Vec<(String, web_sys::File)> {
    files
        .into_iter()
        .map(|file| {
            let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
            (if relative.is_empty() { file.name() } else { relative }, file)
        })
        .collect()
}

/// Waits for a callback-style file system call: `start` gets the success and error callbacks.
async fn callback(start: impl FnOnce(&js_sys::Function, &js_sys::Function)) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    let mut start = Some(start);
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        if let Some(start) = start.take() {
            start(&resolve, &reject);
        }
    });
    wasm_bindgen_futures::JsFuture::from(promise).await
}

/// What was dropped, as file system entries. Taken in the drop event itself: the browser
/// empties the list once the event ends.
fn dropped_entries(transfer: &web_sys::DataTransfer) -> Vec<web_sys::FileSystemEntry> {
    let items = transfer.items();
    (0..items.length()).filter_map(|i| items.get(i)).filter_map(|item| item.webkit_get_as_entry().ok().flatten()).collect()
}

/// The files under dropped entries (folders are walked), by path from the dropped
/// folder's parent, like the folder picker's. A drop hands over entries, not files.
async fn dropped_folder(mut pending: Vec<web_sys::FileSystemEntry>) -> Result<Vec<(String, web_sys::File)>, String> {
    let mut out = Vec::new();
    while let Some(entry) = pending.pop() {
        let path = entry.full_path().trim_start_matches('/').to_string();
        if entry.is_directory() {
            let reader = entry.unchecked_into::<web_sys::FileSystemDirectoryEntry>().create_reader();
            // readEntries gives a batch at a time (100 in Chromium) until an empty one.
            loop {
                let batch = callback(|ok, fail| {
                    if let Err(e) = reader.read_entries_with_callback_and_callback(ok, fail) {
                        let _ = fail.call1(&wasm_bindgen::JsValue::NULL, &e);
                    }
                })
                .await
                .map_err(|_| format!("{path}: the folder could not be read. Choose it with the button instead."))?;
                let batch: js_sys::Array = batch.unchecked_into();
                if batch.length() == 0 {
                    break;
                }
                pending.extend(batch.iter().map(|e| e.unchecked_into::<web_sys::FileSystemEntry>()));
                if pending.len() + out.len() > MAX_FOLDER_FILES {
                    return Err(too_many_files());
                }
            }
        } else if entry.is_file() {
            let file_entry = entry.unchecked_into::<web_sys::FileSystemFileEntry>();
            let file = callback(|ok, fail| file_entry.file_with_callback_and_callback(ok, fail))
                .await
                .map_err(|_| format!("{path}: the file could not be read. Choose the folder with the button instead."))?;
            out.push((path, file.unchecked_into()));
        }
    }
    Ok(out)
}

/// Reads the layout of a folder's files (paths from the folder's parent). Paths are taken
/// inside the folder, as the CLI takes them inside `--dataset`, so both name files (and
/// split them) alike.
fn folder_of(files: Vec<(String, web_sys::File)>) -> Result<Folder, String> {
    if files.is_empty() {
        return Err("The chosen folder holds no files. Choose the dataset folder itself (the one with train/ and test/).".into());
    }
    if files.len() > MAX_FOLDER_FILES {
        return Err(too_many_files());
    }
    // One folder chosen: its name goes, the paths start inside it. Several folders dropped
    // at once (train/ and test/ themselves): they are the dataset.
    let top = |path: &str| path.split_once('/').map(|(top, _)| top.to_string());
    let first = top(&files[0].0);
    let one_folder = first.is_some() && files.iter().all(|(path, _)| top(path) == first);
    let name = first.filter(|_| one_folder).unwrap_or_else(|| "dataset".into());
    let by_path: HashMap<String, web_sys::File> = files
        .into_iter()
        .map(|(path, file)| {
            (if one_folder { path.split_once('/').map(|(_, inside)| inside.to_string()).unwrap_or(path) } else { path }, file)
        })
        .collect();
    let mut paths: Vec<String> = by_path.keys().cloned().collect();
    paths.sort();
    let dataset = parse(&paths, None).map_err(|e| format!("{name}: {e}"))?;
    Ok(Folder { name, files: by_path, dataset })
}

#[derive(Clone, Copy, PartialEq)]
enum ModelChoice {
    Train(MethodChoice),
    Current,
}

#[derive(Clone, PartialEq)]
struct Step {
    what: &'static str,
    done: usize,
    total: usize,
}

/// Reports problems as they come, up to a few; the rest are counted.
struct Problems {
    state: AppState,
    count: usize,
}

impl Problems {
    fn add(&mut self, message: String) {
        self.count += 1;
        if self.count <= MAX_PROBLEMS_SHOWN {
            self.state.report(message);
        }
    }

    fn finish(&self) {
        if self.count > MAX_PROBLEMS_SHOWN {
            self.state
                .report(format!("…and {} more problems with files of this folder, like those above.", self.count - MAX_PROBLEMS_SHOWN));
        }
    }
}

/// A finished report with what it shows. Its object URLs live as long as it does.
struct Shown {
    folder: String,
    report: Report,
    outcome: EvalOutcome,
    charts: Vec<(String, String)>,
    gallery: Vec<ShownCase>,
    urls: Vec<String>,
}

struct ShownCase {
    path: String,
    anomalous: bool,
    normalised_score: f32,
    photo: String,
    heatmap: String,
    /// None: no mask; for a good item there is nothing to mark.
    truth: Option<String>,
}

impl Drop for Shown {
    fn drop(&mut self) {
        for url in &self.urls {
            let _ = web_sys::Url::revoke_object_url(url);
        }
    }
}

async fn upload(folder: &Folder, path: &str) -> Result<UploadedFile, String> {
    let file = folder.files.get(path).ok_or_else(|| format!("{path}: the file is no longer in the folder. Choose the folder again."))?;
    Ok(UploadedFile { name: path.to_string(), bytes: read_file(file, path).await? })
}

async fn mask_of(folder: &Folder, sample: &Sample) -> MaskFile {
    match sample.mask.as_deref().filter(|_| sample.anomalous) {
        None => MaskFile::None,
        Some(path) => match upload(folder, path).await {
            Ok(file) => MaskFile::File(file),
            Err(why) => MaskFile::Unreadable(why),
        },
    }
}

/// Sends samples one at a time, each with its mask.
async fn send_samples(
    steps: &Steps,
    folder: &Folder,
    samples: &[Sample],
    calibration: bool,
    step: &dyn Fn(usize),
    problems: &mut Problems,
) -> Result<(), Stop> {
    for (i, sample) in samples.iter().enumerate() {
        match upload(folder, &sample.path).await {
            Ok(image) => {
                let mask = mask_of(folder, sample).await;
                if let EvalReply::Done { problems: found } =
                    steps.ask(EvalRequest::Sample { sample: sample.clone(), image, mask, calibration }).await?
                {
                    found.into_iter().for_each(|p| problems.add(p));
                }
            }
            Err(why) => problems.add(format!("{why} It is left out.")),
        }
        step(i + 1);
    }
    Ok(())
}

async fn run(
    steps: Steps,
    folder: &Folder,
    model: ModelChoice,
    threshold: Option<ThresholdMethod>,
    progress: RwSignal<Option<Step>>,
) -> Result<Shown, Stop> {
    let state = steps.state;
    let mut problems = Problems { state, count: 0 };
    folder.dataset.problems.iter().for_each(|p| problems.add(p.clone()));
    let set = |what, done, total| progress.set(Some(Step { what, done, total }));

    let source = match model {
        ModelChoice::Train(method) => EvalModel::Train { name: folder.name.clone(), method },
        ModelChoice::Current => EvalModel::Active,
    };
    steps.ask(EvalRequest::Begin { model: source, threshold: threshold.clone() }).await?;
    if let ModelChoice::Train(_) = model {
        let total = folder.dataset.train.len();
        for (i, path) in folder.dataset.train.iter().enumerate() {
            set("Learning from good photos", i, total);
            match upload(folder, path).await {
                Ok(file) => {
                    if let EvalReply::Done { problems: found } = steps.ask(EvalRequest::TrainImage { file }).await? {
                        found.into_iter().for_each(|p| problems.add(format!("Skipped: {p}")));
                    }
                }
                Err(why) => problems.add(format!("Skipped: {why}")),
            }
        }
        set("Learning from good photos", total, total);
        steps.ask(EvalRequest::Fit).await?;
    }

    let test = match threshold {
        None => folder.dataset.test.clone(),
        Some(_) => {
            let (calibration, judged) = split_calibration(&folder.dataset.test, &folder.dataset.validation, CALIBRATION_PER_DEFECT, false);
            let total = calibration.len();
            set("Choosing the threshold", 0, total);
            send_samples(&steps, folder, &calibration, true, &|done| set("Choosing the threshold", done, total), &mut problems).await?;
            judged
        }
    };
    steps.ask(EvalRequest::ChooseThreshold).await?;
    let total = test.len();
    set("Evaluating", 0, total);
    send_samples(&steps, folder, &test, false, &|done| set("Evaluating", done, total), &mut problems).await?;
    let outcome = match steps.ask(EvalRequest::Finish { gallery: GALLERY_PER_SIDE }).await? {
        EvalReply::Finished(outcome) => *outcome,
        _ => return Err(Stop::Failed("The engine answered out of order. Start the evaluation again.".into())),
    };
    problems.finish();
    to_shown(folder, outcome).map_err(Stop::Failed)
}

fn object_url(blob: &web_sys::Blob) -> Result<String, String> {
    web_sys::Url::create_object_url_with_blob(blob).map_err(|e| format!("{e:?}"))
}

/// Builds what the report view shows: the parsed report, its charts and the gallery.
fn to_shown(folder: &Folder, outcome: EvalOutcome) -> Result<Shown, String> {
    let report: Report = serde_json::from_str(&outcome.report_json).map_err(|e| format!("The engine's report cannot be read: {e}"))?;
    let mut urls = Vec::new();
    let mut keep = |url: String| {
        urls.push(url.clone());
        url
    };
    let mut charts = Vec::new();
    let c = &outcome.curves;
    let plots: [(Chart, &[PlotLine], &str); 3] = [
        (
            Chart {
                title: "Image ROC",
                x: "false positive rate (good photos flagged)",
                y: "true positive rate",
                guide: Guide::Diagonal,
                legend_at: SeriesLabelPosition::LowerRight,
            },
            &c.image_roc,
            "Image-level ROC curves, overall and per defect category",
        ),
        (
            Chart {
                title: "Image precision-recall",
                x: "recall (damaged photos caught)",
                y: "precision",
                guide: Guide::None,
                legend_at: SeriesLabelPosition::LowerLeft,
            },
            &c.image_pr,
            "Image-level precision-recall curves, overall and per defect category",
        ),
        (
            Chart {
                title: "Pixel PRO (per-region overlap)",
                x: "false positive rate (normal pixels)",
                y: "per-region overlap",
                guide: Guide::Limit(AUPRO_MAX_FPR, "AUPRO limit"),
                legend_at: SeriesLabelPosition::LowerRight,
            },
            c.pixel_pro.as_slice(),
            "Pixel-level per-region overlap curve; AUPRO is its area up to a false positive rate of 0.3",
        ),
    ];
    for (chart, lines, alt) in plots {
        if lines.is_empty() {
            continue;
        }
        let svg = eval_charts::svg(&chart, lines)?;
        charts.push((keep(eval_charts::svg_url(&svg)?), alt.to_string()));
    }
    let mut gallery = Vec::new();
    for case in &outcome.gallery {
        let photo = folder.files.get(&case.path).ok_or_else(|| format!("{}: no longer in the folder", case.path))?;
        let truth = folder
            .dataset
            .test
            .iter()
            .find(|s| s.path == case.path)
            .and_then(|s| s.mask.as_ref())
            .and_then(|m| folder.files.get(m))
            .map(|m| object_url(m))
            .transpose()?
            .map(&mut keep);
        gallery.push(ShownCase {
            path: case.path.clone(),
            anomalous: case.anomalous,
            normalised_score: case.normalised_score,
            photo: keep(object_url(photo)?),
            heatmap: keep(object_url(&blob_of_type(&case.heatmap_png, "image/png")?)?),
            truth,
        });
    }
    Ok(Shown { folder: folder.name.clone(), report, outcome, charts, gallery, urls })
}

/// A file name made of the dataset's name, safe on every system.
fn export_name(folder: &str, suffix: &str) -> String {
    let cleaned: String = folder.chars().map(|c| if c.is_alphanumeric() || "-_".contains(c) { c } else { '_' }).collect();
    format!("{cleaned}-{suffix}")
}

#[component]
pub fn EvaluatePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let model = RwSignal::new(ModelChoice::Train(MethodChoice::Padim));
    let threshold = RwSignal::new(PROFILE_THRESHOLD.to_string());
    let running = RwSignal::new(false);
    let progress = RwSignal::new(None::<Step>);
    let report = RwSignal::new_local(None::<Rc<Shown>>);
    let layout = RwSignal::new(None::<String>);

    let dragging = RwSignal::new(false);
    // Numbers the evaluations started here, so a cancelled one knows it is no longer shown.
    let runs = StoredValue::new(0u32);
    let can_start = move || state.model.with(Option::is_some) && !running.get() && !state.training();
    let start = move |files: Vec<(String, web_sys::File)>| {
        let folder = match folder_of(files) {
            Ok(folder) => folder,
            Err(message) => return state.report(message),
        };
        let d = &folder.dataset;
        let damaged = d.test.iter().filter(|s| s.anomalous).count();
        let masks = d.test.iter().filter(|s| s.anomalous && s.mask.is_some()).count();
        layout.set(Some(format!(
            "{}: {} layout, {} good training photos, {} test photos ({} good, {} damaged, {} with a mask)",
            folder.name,
            d.layout,
            d.train.len(),
            d.test.len(),
            d.test.len() - damaged,
            damaged,
            masks
        )));
        let (choice, method) = (model.get_untracked(), ThresholdMethod::by_name(&threshold.get_untracked()));
        running.set(true);
        report.set(None);
        let this_run = runs.get_value().wrapping_add(1);
        runs.set_value(this_run);
        leptos::task::spawn_local(async move {
            match run(Steps { state, this_run, runs }, &folder, choice, method, progress).await {
                Ok(done) => report.set(Some(Rc::new(done))),
                Err(Stop::Failed(message)) => state.report(format!("{}: the evaluation stopped: {message}", folder.name)),
                Err(Stop::Cancelled) => {}
            }
            // After a Cancel, another evaluation may be under way by now: leave its panel be.
            if runs.get_value() == this_run {
                running.set(false);
                progress.set(None);
            }
        });
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let Some(transfer) = ev.data_transfer() else { return };
        if !can_start() {
            return state
                .report("An evaluation is under way, or the model is still loading: wait, or cancel it, then drop the folder again.");
        }
        let entries = dropped_entries(&transfer);
        leptos::task::spawn_local(async move {
            match dropped_folder(entries).await {
                Ok(files) => start(files),
                Err(message) => state.report(message),
            }
        });
    };
    let cancel = move |_| {
        // The step in flight finishes; the run stops before its next one. The engine
        // drops the evaluation (and its maps) now.
        runs.update_value(|n| *n = n.wrapping_add(1));
        running.set(false);
        progress.set(None);
        leptos::task::spawn_local(async move {
            let _ = client::call(state, Request::Eval(EvalRequest::Cancel), None).await;
        });
    };
    let current_name = move || state.current.get().filter(|_| state.ready()).map(|p| p.name);
    // The current product is a choice only while it is ready.
    Effect::new(move |_| {
        if current_name().is_none() && model.get_untracked() == ModelChoice::Current {
            model.set(ModelChoice::Train(MethodChoice::Padim));
        }
    });

    view! {
        <section class="panel wide" aria-labelledby="eval-title">
            <h2 id="eval-title">"Evaluate on a dataset"</h2>
            <p class="hint">
                "A folder in MVTec AD layout: train/good/ (good photos), test/good/ and test/<defect>/, with masks in ground_truth/<defect>/<name>_mask.png. "
                "BTAD folders and plain good/ + damage-type folders work too. Everything stays on this device."
            </p>
            <div class="eval-options">
                <fieldset class="method">
                    <legend>"Model"</legend>
                    <label><input type="radio" name="eval-model" data-testid="eval-train-padim" disabled=move || running.get()
                        checked=move || model.get() == ModelChoice::Train(MethodChoice::Padim)
                        on:change=move |_| model.set(ModelChoice::Train(MethodChoice::Padim))/>" Learn PaDiM from the folder's train/good photos"</label>
                    <label><input type="radio" name="eval-model" data-testid="eval-train-patchcore" disabled=move || running.get()
                        checked=move || model.get() == ModelChoice::Train(MethodChoice::PatchCore)
                        on:change=move |_| model.set(ModelChoice::Train(MethodChoice::PatchCore))/>" Learn PatchCore from the folder's train/good photos"</label>
                    <label><input type="radio" name="eval-model" data-testid="eval-train-auto" disabled=move || running.get()
                        checked=move || model.get() == ModelChoice::Train(MethodChoice::Automatic)
                        on:change=move |_| model.set(ModelChoice::Train(MethodChoice::Automatic))/>" Learn from the folder's train/good photos with the method chosen automatically (several times slower)"</label>
                    <label><input type="radio" name="eval-model" data-testid="eval-current" disabled=move || running.get() || current_name().is_none()
                        checked=move || model.get() == ModelChoice::Current
                        on:change=move |_| model.set(ModelChoice::Current)/>
                        {move || match current_name() {
                            Some(name) => format!(" Use the current product, {name}"),
                            None => " Use the current product (none is ready)".to_string(),
                        }}
                    </label>
                </fieldset>
                <div class="field">
                    <label for="eval-threshold">"Threshold"</label>
                    <select id="eval-threshold" data-testid="eval-threshold" disabled=move || running.get()
                        on:change=move |ev| threshold.set(event_target_value(&ev))>
                        <option value=PROFILE_THRESHOLD selected=true>"The model's own: statistics of good photos only"</option>
                        {NAMED_METHODS.iter().map(|(name, what)| view! {
                            <option value=*name>{format!("{}: {what}; chosen on {CALIBRATION_PER_DEFECT} damaged photos per defect, left out of the report", capitalised(name))}</option>
                        }).collect_view()}
                    </select>
                </div>
            </div>
            <div class="dropzone" class:dragging=move || dragging.get()
                on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop>
                <label for="eval-folder">"Choose the dataset folder, or drop it here; the evaluation starts at once"</label>
                <input id="eval-folder" type="file" multiple prop:webkitdirectory=true data-testid="eval-folder"
                    disabled=move || !can_start() on:change=move |ev| start(picked_folder(picked_files(&ev)))/>
            </div>
            <Show when=move || state.model.with(Option::is_none)>
                <p class="hint">"Loading the model…"</p>
            </Show>
            {move || layout.get().map(|text| view! { <p class="hint" data-testid="eval-layout">{text}</p> })}
            <Show when=move || running.get()>
                {move || {
                    let step = progress.get().unwrap_or(Step { what: "Starting", done: 0, total: 1 });
                    view! {
                        <label class="progress-label" for="eval-progress">{format!("{}: {} of {} photos", step.what, step.done, step.total)}</label>
                        <progress id="eval-progress" data-testid="eval-progress" max=step.total value=step.done></progress>
                    }
                }}
                <button class="secondary" data-testid="eval-cancel" on:click=cancel>"Cancel"</button>
            </Show>
            {move || report.get().map(|shown| view! { <ReportView shown=shown/> })}
        </section>
    }
}

fn capitalised(name: &str) -> String {
    let words = name.replace('-', " ");
    let mut chars = words.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn figure(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

fn percent(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "–".into())
}

#[component]
fn ReportView(shown: Rc<Shown>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let r = &shown.report;
    let mut rows: Vec<(String, Metrics)> = r.categories.iter().map(|(name, m)| (name.clone(), m.clone())).collect();
    rows.push(("overall".into(), r.overall.clone()));
    let (json, csv, folder) = (shown.outcome.report_json.clone(), shown.outcome.scores_csv.clone(), shown.folder.clone());
    let folder_csv = folder.clone();
    let export = move |name: String, bytes: &[u8]| {
        if let Err(message) = files::download(&name, bytes) {
            state.report(format!("{name} could not be saved: {message}"));
        }
    };
    let timing = r.timing.as_ref().map(|t| {
        format!(
            "Learnt from {} good photos in {:.0} s; {:.0} ms per photo judged.",
            t.training_images, t.training_seconds, t.inspect_ms_per_image
        )
    });
    view! {
        <div class="eval-report" data-testid="eval-report" data-image-auroc=figure(r.overall.image_AUROC)>
            <h3>{format!("Report: {}", shown.folder)}</h3>
            {r.method.clone().map(|m| view! { <p data-testid="eval-method">{format!("Method: {m}.{}", r.method_why.as_ref().map(|w| format!(" {w}")).unwrap_or_default())}</p> })}
            <p data-testid="eval-threshold-used">{format!("Threshold {:.3}: {}", r.threshold, r.threshold_method)}</p>
            <p data-testid="eval-check-band">{match r.check_from {
                Some(from) => format!(
                    "CHECK from {from:.3} up to the threshold: {} of the photos go to a person; {} of the damaged ones pass as OK.",
                    percent(r.overall.check_share),
                    percent(r.overall.damaged_passed_as_ok)
                ),
                None => format!("No CHECK band: {} of the damaged photos pass as OK.", percent(r.overall.damaged_passed_as_ok)),
            }}</p>
            {timing.map(|t| view! { <p class="hint">{t}</p> })}
            <div class="table-wrap">
                <table class="metrics">
                    <caption>"Threshold-free: image AUROC and AP, pixel AUROC, AUPRO. At the threshold: pixel IoU, F1, precision, recall, and image accuracy."</caption>
                    <thead><tr>
                        <th scope="col">"Category"</th><th scope="col">"Photos"</th><th scope="col">"Damaged"</th>
                        <th scope="col">"Image AUROC"</th><th scope="col">"Image AP"</th><th scope="col">"Pixel AUROC"</th><th scope="col">"AUPRO"</th>
                        <th scope="col">"IoU"</th><th scope="col">"F1"</th><th scope="col">"Precision"</th><th scope="col">"Recall"</th><th scope="col">"Image accuracy"</th>
                        <th scope="col">"CHECK share"</th>
                    </tr></thead>
                    <tbody>
                        {rows.into_iter().map(|(name, m)| view! {
                            <tr class:overall={name == "overall"} data-category=name.clone()>
                                <th scope="row">{name.clone()}</th>
                                <td>{m.images}</td><td>{m.anomalous}</td>
                                <td>{figure(m.image_AUROC)}</td><td>{figure(m.image_AP)}</td><td>{figure(m.pixel_AUROC)}</td><td>{figure(m.pixel_AUPRO)}</td>
                                <td>{figure(m.pixel_IoU)}</td><td>{figure(m.pixel_F1)}</td><td>{figure(m.pixel_precision)}</td><td>{figure(m.pixel_recall)}</td>
                                <td>{figure(m.image_accuracy)}</td><td>{figure(m.check_share)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <div class="actions">
                <button class="secondary" data-testid="eval-export-json" on:click=move |_| export(export_name(&folder, "report.json"), json.as_bytes())>"Export report (JSON)"</button>
                <button class="secondary" data-testid="eval-export-csv" on:click=move |_| export(export_name(&folder_csv, "scores.csv"), csv.as_bytes())>"Export scores (CSV)"</button>
            </div>
            <div class="charts">
                {shown.charts.iter().map(|(url, alt)| view! {
                    <figure><img src=url.clone() alt=alt.clone() width="420" height="340"/></figure>
                }).collect_view()}
            </div>
            <h3>"Worst cases"</h3>
            <p class="hint">"The good photos scoring highest and the damaged ones scoring lowest: photo, heatmap, ground truth."</p>
            <ul class="gallery" data-testid="eval-gallery">
                {shown.gallery.iter().map(|case| {
                    let flagged = case.normalised_score >= 0.5;
                    let verdict = match (case.anomalous, flagged) {
                        (false, true) => "good, flagged: a false alarm",
                        (false, false) => "good, not flagged",
                        (true, true) => "damaged, caught",
                        (true, false) => "damaged, missed",
                    };
                    view! {
                        <li class:wrong={case.anomalous != flagged}>
                            <p><strong>{case.path.clone()}</strong>{format!(" · {verdict} · score {:.2}", case.normalised_score)}</p>
                            <div class="triple">
                                <figure><img src=case.photo.clone() alt=format!("Photo {}", case.path)/><figcaption>"Photo"</figcaption></figure>
                                <figure>
                                    <div class="stack">
                                        <img src=case.photo.clone() alt=""/>
                                        <img class="heat" src=case.heatmap.clone() alt=format!("Heatmap of {}", case.path)/>
                                    </div>
                                    <figcaption>"Heatmap"</figcaption>
                                </figure>
                                <figure>
                                    {match (&case.truth, case.anomalous) {
                                        (Some(url), _) => view! { <img src=url.clone() alt=format!("Ground truth of {}", case.path)/> }.into_any(),
                                        (None, false) => view! { <div class="no-truth">"Good: no damage"</div> }.into_any(),
                                        (None, true) => view! { <div class="no-truth">"No mask given"</div> }.into_any(),
                                    }}
                                    <figcaption>"Ground truth"</figcaption>
                                </figure>
                            </div>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}
