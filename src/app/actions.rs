//! What the panels do with the person's work, in one place, so no panel calls into
//! another: the library (choose, create, import, save what the engine trained), training
//! and inspection calls to the engine. Each awaits its own answer (`client::call`).

use std::rc::Rc;

use leptos::prelude::*;

use super::client;
use super::files::photos_only;
use super::record;
use super::state::{local_storage, now_ms, AppState, InspectionItem, Progress};
use super::store::{self, Library, PhotoRole, Product};
use crate::client::versions::{self, Change, Version};
use crate::client::workbench::{Next, Workbench};
use crate::engine::profile::{Origin, Profile};
use crate::protocol::{
    Failure, FailureKind, InspectionReply, KnownProfile, ProductMatch, ProfileSummary, Reply, Request, TrainChoice, UploadedFile,
};

const CURRENT_KEY: &str = "damagelens.current";
const AUTO_KEY: &str = "damagelens.auto";
pub const PROFILE_EXTENSION: &str = "dlprofile";

fn remember_current(id: Option<&str>) {
    let Some(storage) = local_storage() else { return };
    let _ = match id {
        Some(id) => storage.set_item(CURRENT_KEY, id),
        None => storage.remove_item(CURRENT_KEY),
    };
}

fn remembered_current() -> Option<String> {
    local_storage()?.get_item(CURRENT_KEY).ok()?
}

/// Switches Auto on or off; a station stays in Auto across reloads.
pub fn set_auto(state: AppState, on: bool) {
    state.auto.set(on);
    if let Some(storage) = local_storage() {
        let _ = if on { storage.set_item(AUTO_KEY, "1") } else { storage.remove_item(AUTO_KEY) };
    }
}

fn remembered_auto() -> bool {
    local_storage().and_then(|s| s.get_item(AUTO_KEY).ok().flatten()).is_some()
}

/// Opens saved work and picks up where the person left off.
pub async fn open(state: AppState) {
    let library = match Library::open().await {
        Ok(library) => Rc::new(library),
        Err(message) => return state.report(format!("{message} Work in this tab will not be saved.")),
    };
    state.library.set_value(Some(library));
    state.auto.set(remembered_auto());
    state.refresh_products().await;
    record::open(state).await;
    let remembered = remembered_current();
    let current = state.products.with_untracked(|ps| {
        ps.iter().find(|p| Some(&p.id) == remembered.as_ref()).or_else(|| ps.iter().rev().find(|p| p.summary.is_some())).cloned()
    });
    if let Some(product) = current {
        select(state, product).await;
    }
}

/// Makes `product` the current one: its photos are shown and its profile goes to the engine.
pub async fn select(state: AppState, product: Product) {
    remember_current(Some(&product.id));
    state.inspections.set(Vec::new());
    state.selected.set(None);
    state.calibration.set(None);
    if let Next::LoadCurrent(_) = state.set_current(Some(product)) {
        load_current(state);
    }
    reload_photos(state).await;
}

/// Starts a new product: nothing is current until its first photo names it.
pub fn new_product(state: AppState) {
    remember_current(None);
    let _ = state.set_current(None);
    state.bench.update(Workbench::naming_new);
    state.photos.set(Vec::new());
    state.damaged.set(Vec::new());
    state.inspections.set(Vec::new());
}

pub async fn reload_photos(state: AppState) {
    let (Some(library), Some(id)) = (state.library(), state.current.with_untracked(|c| c.as_ref().map(|p| p.id.clone()))) else {
        state.photos.set(Vec::new());
        state.damaged.set(Vec::new());
        return;
    };
    match library.photos(&id).await {
        // The person may have moved on while the photos were read.
        Ok(_) if state.bench.with_untracked(|b| b.current() != Some(id.as_str())) => {}
        Ok(photos) => {
            let (good, damaged) = photos.into_iter().partition(|p| p.role == PhotoRole::Good);
            state.photos.set(good);
            state.damaged.set(damaged);
        }
        Err(message) => state.report(message),
    }
}

/// Hands the current product's profile to the engine when the engine holds another one
/// (or none) and the model is there to take it.
pub fn load_current(state: AppState) {
    leptos::task::spawn_local(async move {
        if let Err(message) = load_current_now(state).await {
            state.report(message);
        }
    });
}

/// [`load_current`], awaited: done when the engine holds the current product's profile.
async fn load_current_now(state: AppState) -> Result<(), String> {
    if state.model.with_untracked(Option::is_none) {
        return Ok(());
    }
    let Next::LoadCurrent(id) = state.bench.with_untracked(Workbench::next) else { return Ok(()) };
    let (Some(product), Some(library)) = (state.current.get_untracked().filter(|p| p.id == id), state.library()) else { return Ok(()) };
    state.bench.update(|b| b.load_started(&id));
    let loaded = match library.profile(&id).await {
        Ok(Some(bytes)) => {
            let request = Request::Load { file: format!("{}.{PROFILE_EXTENSION}", product.name), product: Some(id.clone()), bytes };
            match client::call(state, request, None).await {
                Ok(_) => Ok(()),
                // Trained with an earlier backbone (this app's model file changed): the
                // product is learnt again from its saved photos, as it was trained.
                Err(failure) if failure.kind == FailureKind::OtherBackbone => {
                    state.bench.update(|b| b.load_ended(&id, false));
                    return relearn(state, &library, product).await;
                }
                Err(failure) => Err(failure.message),
            }
        }
        Ok(None) => Err(format!("{}: its trained profile is missing from this device. Train it again.", product.name)),
        Err(message) => Err(message),
    };
    state.bench.update(|b| b.load_ended(&id, loaded.is_ok()));
    loaded
}

/// Trains `product` again from its saved good photos, as it was trained, because its
/// profile was made with another backbone than this app runs.
async fn relearn(state: AppState, library: &Library, product: Product) -> Result<(), String> {
    let photos = good_photos(library, &product.id).await?;
    if photos.is_empty() {
        return Err(format!(
            "{}: it was trained with another version of the model and its photos are not on this device. Train it again.",
            product.name
        ));
    }
    state.report(format!(
        "{} was trained with an earlier version of the model: learning it again from its {} saved photos.",
        product.name,
        photos.len()
    ));
    let choice = product.summary.as_ref().map(|s| s.choice).unwrap_or_default();
    train_product(state, product, photos, choice);
    Ok(())
}

/// The engine recalibrated the current product: saved like a training, so a reload keeps it.
pub fn recalibrated(state: AppState, summary: ProfileSummary, bytes: Vec<u8>) {
    let Some(mut product) = state.current.get_untracked() else { return };
    product.summary = Some(summary);
    state.bench.update(Workbench::current_trained);
    save_and_show(state, product, bytes, Change::Calibrated);
}

/// The engine trained product `id` (the current one, or one the person has left
/// meanwhile): its profile and learning state are saved to that product, under its name
/// as it is now, as the version `change` made.
pub async fn trained(state: AppState, id: &str, mut summary: ProfileSummary, bytes: Vec<u8>, learning: Vec<u8>, change: Change) {
    let Some(library) = state.library() else { return };
    let current = state.current.get_untracked().filter(|p| p.id == id);
    let known = state.products.with_untracked(|ps| ps.iter().find(|p| p.id == id).cloned());
    let Some(mut product) = current.or(known) else { return };
    summary.name = product.name.clone();
    product.summary = Some(summary);
    product.trained_ms = Some(now_ms());
    let is_current = |state: AppState| state.current.with_untracked(|c| c.as_ref().is_some_and(|c| c.id == id));
    if is_current(state) {
        // Verdicts of the model before are gone with it.
        state.inspections.set(Vec::new());
        state.selected.set(None);
    }
    // Saved first, then shown: every photo the page logs as judged by this model names
    // its training time and version (the learning state makes the save take a moment).
    match keep_version(&library, &product, &bytes, change, Some(&learning)).await {
        Ok(number) => product.version = Some(number),
        Err(message) => state.report(message),
    }
    if is_current(state) {
        state.current.set(Some(product));
    }
    state.refresh_products().await;
}

/// Saves `product` with the profile file `bytes` (and its `learning` state, when it has
/// a new one) as its next version, made by `change`, and returns that version's number;
/// the oldest versions beyond [`versions::KEEP_VERSIONS`] go.
pub async fn keep_version(
    library: &Library,
    product: &Product,
    bytes: &[u8],
    change: Change,
    learning: Option<&[u8]>,
) -> Result<u32, String> {
    let summary = product.summary.clone().ok_or_else(|| format!("{}: it has no trained model to keep", product.name))?;
    let history = library.versions(&product.id).await?;
    let now = now_ms();
    let version = Version::next(&history, &product.id, change, summary, product.trained_ms.unwrap_or(now), now);
    let saved = Product { version: Some(version.number), ..product.clone() };
    library.save_version(&saved, bytes, &version, &versions::to_drop(&history), learning).await?;
    Ok(version.number)
}

/// Makes a kept `version` of the current product its model again, exactly as it was:
/// the engine checks and loads its file first, so a version that cannot be read
/// changes nothing; then it is saved as a new version ("rolled back to version 3").
pub async fn roll_back(state: AppState, version: Version) -> Result<(), String> {
    let library = state.library().ok_or("Saved work is not available in this browser")?;
    let Some(mut product) = state.current.get_untracked().filter(|p| p.id == version.product) else { return Ok(()) };
    let bytes = library
        .version_profile(&version.id)
        .await?
        .ok_or_else(|| format!("{}: version {} is no longer kept on this device.", product.name, version.number))?;
    let id = product.id.clone();
    state.bench.update(|b| b.load_started(&id));
    let file = format!("{} version {}.{PROFILE_EXTENSION}", product.name, version.number);
    let answer = client::call(state, Request::Load { file, product: Some(id.clone()), bytes: bytes.clone() }, None).await;
    state.bench.update(|b| b.load_ended(&id, matches!(answer, Ok(Reply::Loaded { .. }))));
    match answer {
        Ok(Reply::Loaded { .. }) => {}
        Ok(_) => return Err(format!("{}: the engine answered out of order. Roll back again.", product.name)),
        Err(failure) => {
            load_current(state);
            return Err(format!("{}: version {} could not be restored: {}", product.name, version.number, failure.message));
        }
    }
    let mut summary = version.summary.clone();
    summary.name = product.name.clone();
    product.summary = Some(summary);
    product.trained_ms = Some(version.trained_ms);
    state.calibration.set(None);
    save_and_show(state, product, bytes, Change::RolledBack { to: version.number });
    Ok(())
}

/// Shows `product` as the current one and saves it with its profile, as a new version.
fn save_and_show(state: AppState, product: Product, bytes: Vec<u8>, change: Change) {
    remember_current(Some(&product.id));
    state.current.set(Some(product.clone()));
    state.inspections.set(Vec::new());
    state.selected.set(None);
    let Some(library) = state.library() else { return };
    leptos::task::spawn_local(async move {
        if let Err(message) = keep_version(&library, &product, &bytes, change, None).await {
            state.report(message);
        }
        state.refresh_products().await;
        // An imported product has no photos here: the ones shown belonged to the last one.
        reload_photos(state).await;
    });
}

/// An import that replaces a product with an older (or the same) version of it: the
/// person decides ([`import_into`], [`import_as_new`] or nothing).
#[derive(Clone)]
pub struct ImportQuestion {
    pub file: UploadedFile,
    pub product: Product,
    /// Which version of the product the file is.
    pub origin: Origin,
    /// The version in use on this device.
    pub current: u32,
}

impl ImportQuestion {
    pub fn ask(&self) -> String {
        let older = if self.origin.version < self.current { "older than" } else { "the same as" };
        format!(
            "{} is already on this device, at version {}. {} is its version {}, {older} the one here. \
             Replace it? (Its versions here stay in its history, to roll back to.)",
            self.product.name, self.current, self.file.name, self.origin.version
        )
    }
}

/// A profile file, from another device or exported from this one. A file of a product
/// that is in the library (exported from it, or imported before) replaces it as a new
/// version when it is newer; an older or the same version comes back as a question.
/// Anything else joins the library as a new product. The engine checks the file
/// completely before anything is saved.
pub async fn import(state: AppState, file: UploadedFile) -> Option<ImportQuestion> {
    let origin = Profile::from_bytes(&file.name, &file.bytes, None).ok().and_then(|p| p.origin);
    let Some(origin) = origin else {
        import_as_new(state, file, store::new_id()).await;
        return None;
    };
    let Some(product) = state.products.with_untracked(|ps| ps.iter().find(|p| p.id == origin.product).cloned()) else {
        // The product keeps its id, so importing a later version of it finds it here.
        import_as_new(state, file, origin.product).await;
        return None;
    };
    let current = product.version.unwrap_or(0);
    if origin.version <= current {
        return Some(ImportQuestion { file, product, origin, current });
    }
    import_into(state, file, product, origin).await;
    None
}

/// Has the engine check a profile file completely and make it product `id`'s; None when
/// it refused (said to the person; the profile it held stays, and the current product's
/// goes back to it).
async fn load_file(state: AppState, file: UploadedFile, id: &str) -> Option<ProfileSummary> {
    match client::call(state, Request::Load { file: file.name, product: Some(id.to_string()), bytes: file.bytes }, None).await {
        Ok(Reply::Loaded { profile }) => Some(profile),
        Ok(_) => {
            state.report("The engine answered an import out of order. Import the file again.");
            None
        }
        Err(failure) => {
            state.report(failure.message);
            load_current(state);
            None
        }
    }
}

/// Imports a profile file as a new product with library id `id`.
pub async fn import_as_new(state: AppState, file: UploadedFile, id: String) {
    let bytes = file.bytes.clone();
    let Some(profile) = load_file(state, file, &id).await else { return };
    let now = now_ms();
    let product = Product { id, name: profile.name.clone(), created_ms: now, trained_ms: Some(now), summary: Some(profile), version: None };
    state.bench.update(|b| b.imported(&product.id));
    save_and_show(state, product, bytes, Change::Imported { version: None });
}

/// Imports a profile file, version `origin` of `product` (exported from a library), as
/// the product's next version, which becomes current.
pub async fn import_into(state: AppState, file: UploadedFile, mut product: Product, origin: Origin) {
    let bytes = file.bytes.clone();
    let Some(mut profile) = load_file(state, file, &product.id).await else { return };
    remember_current(Some(&product.id));
    profile.name = product.name.clone();
    product.summary = Some(profile);
    product.trained_ms = Some(origin.trained_ms);
    state.bench.update(|b| b.imported(&product.id));
    state.calibration.set(None);
    save_and_show(state, product, bytes, Change::Imported { version: Some(origin.version) });
}

/// A new, empty product saved to the library (it does not become current).
pub async fn create_product(state: AppState, name: &str) -> Result<Product, String> {
    let library = state.library().ok_or("Saved work is not available in this browser")?;
    let name = match name.trim() {
        "" => "Untitled product".to_string(),
        n => n.to_string(),
    };
    let product = Product { id: store::new_id(), name, created_ms: now_ms(), trained_ms: None, summary: None, version: None };
    library.save(&product).await?;
    state.refresh_products().await;
    Ok(product)
}

/// Saves picked photos as good photos of the current product (made when there is none);
/// returns that product, or None when no photo was left to save.
pub async fn add_good_photos(state: AppState, name: &str, files: Vec<UploadedFile>) -> Result<Option<Product>, String> {
    let files = photos_only(state, files);
    if files.is_empty() {
        return Ok(None);
    }
    let product = match state.current.get_untracked() {
        Some(product) => product,
        None => {
            let product = create_product(state, name).await?;
            select(state, product.clone()).await;
            product
        }
    };
    save_good_photos(state, &product, &files).await?;
    Ok(Some(product))
}

/// Keeps a photo staff confirmed damaged as a damaged photo of the current product: the
/// Calibrate panel lists it, and its next scoring teaches the product's damage head
/// from it with the others.
pub async fn keep_damaged_photo(state: AppState, file: UploadedFile) -> Result<(), String> {
    let (Some(product), Some(library)) = (state.current.get_untracked(), state.library()) else { return Ok(()) };
    let saved = library.add_photos(&product.id, PhotoRole::Damaged, &[file]).await?;
    state.damaged.update(|damaged| damaged.extend(saved));
    Ok(())
}

/// Saves photos as good photos of `product`, shown at once when it is the current one.
pub async fn save_good_photos(state: AppState, product: &Product, files: &[UploadedFile]) -> Result<(), String> {
    let library = state.library().ok_or("Saved work is not available in this browser")?;
    let saved = library.add_photos(&product.id, PhotoRole::Good, files).await?;
    if state.current.with_untracked(|c| c.as_ref().is_some_and(|c| c.id == product.id)) {
        state.photos.update(|photos| photos.extend(saved));
    }
    Ok(())
}

/// Trains the current product on all its saved good photos.
pub fn train(state: AppState, choice: TrainChoice) {
    let Some(product) = state.current.get_untracked() else { return };
    let files: Vec<UploadedFile> =
        state.photos.get_untracked().into_iter().map(|p| UploadedFile { name: p.name, bytes: p.bytes }).collect();
    train_product(state, product, files, choice);
}

/// Trains `product` on `files`. The call queues behind whatever the engine is doing (the
/// demo's training, say); when it ends, the profile goes to `product`, whichever product
/// the person is looking at by then.
pub fn train_product(state: AppState, product: Product, files: Vec<UploadedFile>, choice: TrainChoice) {
    let total = files.len();
    let request = Request::Train { name: product.name.clone(), product: Some(product.id.clone()), choice, files };
    fit_product(state, product, request, total, None);
}

/// Learns `files`, just saved as good photos of the current product, into its model
/// without relearning the others (*Mark as good*): the engine goes on from the learning
/// state kept with the model and gives exactly the model of training on all the photos.
/// Without a state that serves (none kept: a model imported, copied or rolled back to;
/// or one of another version), the product is trained on all its saved photos instead,
/// as it was trained, and keeps learning from there.
pub fn learn_more(state: AppState, files: Vec<UploadedFile>) {
    let (Some(product), Some(library)) = (state.current.get_untracked(), state.library()) else { return };
    let choice = product.summary.as_ref().map(|s| s.choice).unwrap_or_default();
    leptos::task::spawn_local(async move {
        let id = product.id.clone();
        let kept = match (library.profile(&id).await, library.learning(&id).await) {
            (Ok(Some(profile)), Ok(Some(learning))) => Some((profile, learning)),
            _ => None,
        };
        let Some((profile, learning)) = kept else {
            return train_all(state, &library, product, choice).await;
        };
        let total = files.len();
        let request = Request::Learn {
            name: product.name.clone(),
            product: Some(id),
            profile: UploadedFile { name: format!("{}.{PROFILE_EXTENSION}", product.name), bytes: profile },
            learning: UploadedFile { name: format!("{}'s learning state", product.name), bytes: learning },
            files,
        };
        fit_product(state, product, request, total, Some(choice));
    });
}

/// Trains `product` on all its saved good photos.
async fn train_all(state: AppState, library: &Library, product: Product, choice: TrainChoice) {
    match good_photos(library, &product.id).await {
        Ok(photos) => train_product(state, product, photos, choice),
        Err(message) => state.report(message),
    }
}

/// A product's saved good photos, as files for the engine.
async fn good_photos(library: &Library, id: &str) -> Result<Vec<UploadedFile>, String> {
    Ok(library
        .photos(id)
        .await?
        .into_iter()
        .filter(|p| p.role == PhotoRole::Good)
        .map(|p| UploadedFile { name: p.name, bytes: p.bytes })
        .collect())
}

/// Sends a `Train` or `Learn` request for `product` (`total` photos to go through),
/// showing its progress; the profile that comes back is saved to `product`. A `Learn`
/// whose state does not serve (`learning_as`: how the product was trained) trains on
/// all the product's photos instead.
fn fit_product(state: AppState, product: Product, request: Request, total: usize, learning_as: Option<TrainChoice>) {
    let id = product.id.clone();
    state.bench.update(|b| b.training_started(&id));
    let started = now_ms();
    let progress = move |state: AppState, id: &str, done: usize, total: usize| {
        let id = id.to_string();
        state.train_progress.update(|all| {
            all.insert(id, Progress { done, total, started_ms: started });
        });
    };
    progress(state, &id, 0, total);
    leptos::task::spawn_local(async move {
        let news = {
            let id = id.clone();
            client::progress_into(state, move |done, total| progress(state, &id, done, total))
        };
        let answer = client::call(state, request, Some(news)).await;
        state.train_progress.update(|all| {
            all.remove(&id);
        });
        let succeeded = matches!(answer, Ok(Reply::Trained { .. }));
        match answer {
            // Saved and shown before the product counts as ready (training_ended below),
            // so no photo is judged by the new model before the page knows its version.
            Ok(Reply::Trained { profile, bytes, learning, added }) => {
                let change = if learning_as.is_some() { Change::Learnt { added } } else { Change::Trained };
                trained(state, &id, profile, bytes, learning, change).await
            }
            Ok(_) => state.report(format!("{}: the engine answered out of order. Train again.", product.name)),
            Err(failure) => match (failure.kind, learning_as, state.library()) {
                (FailureKind::LearningState, Some(choice), Some(library)) => {
                    state.bench.update(|b| {
                        b.training_ended(&id, false);
                    });
                    return train_all(state, &library, product, choice).await;
                }
                _ => state.report(format!("{}: {}", product.name, failure.message)),
            },
        }
        let next = state.bench.try_update(|b| b.training_ended(&id, succeeded));
        if let Some(Next::LoadCurrent(_)) = next {
            load_current(state);
        }
    });
}

/// Tells the engine which products to recognise, when the library's trained products
/// changed since it was last told.
async fn recognise(state: AppState) -> Result<(), Failure> {
    let refused = |message: String| Failure::new(FailureKind::Refused, message);
    let trained: Vec<Product> = state.products.get_untracked().into_iter().filter(|p| p.summary.is_some()).collect();
    let signature: Vec<(String, u64)> = trained.iter().map(|p| (p.id.clone(), p.trained_ms.unwrap_or(0.0) as u64)).collect();
    if state.recognised.get_value().as_ref() == Some(&signature) {
        return Ok(());
    }
    let library = state.library().ok_or_else(|| refused("Saved work is not available in this browser".into()))?;
    let mut products = Vec::with_capacity(trained.len());
    for p in &trained {
        if let Some(bytes) = library.profile(&p.id).await.map_err(refused)? {
            products.push(KnownProfile {
                product: p.id.clone(),
                profile: UploadedFile { name: format!("{}.{PROFILE_EXTENSION}", p.name), bytes },
            });
        }
    }
    match client::call(state, Request::Recognise { products }, None).await? {
        Reply::Recognising { skipped, .. } => {
            skipped.into_iter().for_each(|message| state.report(format!("Auto: {message}")));
            state.recognised.set_value(Some(signature));
            Ok(())
        }
        _ => Err(Failure::new(FailureKind::Protocol, "the engine answered out of order; try again")),
    }
}

/// Makes the recognised product `id` the current one, without clearing the photos shown,
/// and waits until the engine holds its profile.
async fn switch_to(state: AppState, id: &str) -> Result<(), Failure> {
    let refused = |message: String| Failure::new(FailureKind::Refused, message);
    let product = state.products.with_untracked(|ps| ps.iter().find(|p| p.id == id).cloned());
    let product = product.ok_or_else(|| refused("Auto: the recognised product is no longer on this device; try again".into()))?;
    remember_current(Some(&product.id));
    state.calibration.set(None);
    state.set_current(Some(product));
    load_current_now(state).await.map_err(refused)?;
    leptos::task::spawn_local(reload_photos(state));
    Ok(())
}

/// Asks the engine to inspect one photo; a reply of another kind is a failure. With
/// Auto, the engine first recognises the product: when it is another one than the
/// engine holds, that product becomes current and the photo is sent again.
async fn inspect(state: AppState, file: UploadedFile) -> Result<InspectionReply, Failure> {
    let name = file.name.clone();
    let auto = state.auto.get_untracked();
    if auto {
        recognise(state).await?;
    }
    // Twice at most: a photo recognised as another product is judged once that one is loaded.
    for _ in 0..2 {
        match client::call(state, Request::Inspect { file: file.clone(), identify: auto }, None).await? {
            Reply::Inspected { result } => return Ok(result),
            Reply::Recognised { identified: ProductMatch { product: Some(id), .. }, .. } => switch_to(state, &id).await?,
            _ => break,
        }
    }
    Err(Failure::new(FailureKind::Protocol, format!("{name}: the engine answered out of order; inspect it again")))
}

/// Inspects photos already shown as `(tag, file)`, filling in their answers: one after
/// another with Auto (each may switch the product), else all sent at once.
fn judge_all(state: AppState, jobs: Vec<(u32, UploadedFile)>) {
    async fn judge(state: AppState, tag: u32, file: UploadedFile) {
        let answer = inspect(state, file).await;
        if let Err(failure) = &answer {
            state.report(failure.message.clone());
        }
        let judged = answer.is_ok();
        state.inspections.update(|items| {
            if let Some(item) = items.iter_mut().find(|i| i.tag == tag) {
                match answer {
                    Ok(reply) => item.reply = Some(reply),
                    Err(failure) => item.error = Some(failure.message),
                }
            }
        });
        if state.selected.get_untracked().is_none() {
            state.selected.set(Some(tag));
        }
        if judged {
            record::append(state, tag, None).await;
        }
    }
    if state.auto.get_untracked() {
        leptos::task::spawn_local(async move {
            for (tag, file) in jobs {
                judge(state, tag, file).await;
            }
        });
    } else {
        for (tag, file) in jobs {
            leptos::task::spawn_local(judge(state, tag, file));
        }
    }
}

/// Sends photos to the engine; answers fill the grid as they come. They replace the
/// photos shown before, unless an item is open: then they join it as more views.
pub fn start(state: AppState, files: Vec<(UploadedFile, web_sys::Blob)>) {
    let mut items = Vec::with_capacity(files.len());
    let mut jobs = Vec::with_capacity(files.len());
    let session = state.item_session.get_untracked();
    for (file, photo) in files {
        let tag = state.tag();
        let item = session.key_for(&file.name);
        items.push(InspectionItem {
            tag,
            file: file.name.clone(),
            item,
            photo,
            bytes: Rc::new(file.bytes.clone()),
            reply: None,
            error: None,
            logged: None,
        });
        jobs.push((tag, file));
    }
    state.selected.set(None);
    if session.open().is_some() {
        state.inspections.update(|shown| shown.extend(items));
    } else {
        state.inspections.set(items);
    }
    judge_all(state, jobs);
}

/// Judges a photo shown (an unknown product's, say) as product `id`, which the person
/// chose: it becomes current and Auto goes off, since they chose by hand.
pub fn judge_as(state: AppState, tag: u32, id: String) {
    let Some(item) = state.inspections.with_untracked(|items| items.iter().find(|i| i.tag == tag).cloned()) else { return };
    set_auto(state, false);
    leptos::task::spawn_local(async move {
        if let Err(failure) = switch_to(state, &id).await {
            return state.report(failure.message);
        }
        state.inspections.update(|items| {
            if let Some(item) = items.iter_mut().find(|i| i.tag == tag) {
                item.reply = None;
                item.error = None;
                item.logged = None;
            }
        });
        judge_all(state, vec![(tag, UploadedFile { name: item.file, bytes: (*item.bytes).clone() })]);
    });
}

/// Sends a camera frame to the engine; the shown inspection stays until its answer,
/// which then replaces it (so the verdict and heatmap never blink between frames).
pub fn start_live(state: AppState, file: UploadedFile, photo: web_sys::Blob) -> u32 {
    let tag = state.tag();
    let item_key = crate::client::items::item_of(&file.name);
    let mut item = InspectionItem {
        tag,
        file: file.name.clone(),
        item: item_key,
        photo,
        bytes: Rc::new(file.bytes.clone()),
        reply: None,
        error: None,
        logged: None,
    };
    leptos::task::spawn_local(async move {
        match inspect(state, file).await {
            Ok(reply) => item.reply = Some(reply),
            Err(failure) => {
                state.report(failure.message.clone());
                item.error = Some(failure.message);
            }
        }
        // An item opened while this frame was judged: its views stay, the frame goes.
        if state.item_session.with_untracked(|s| s.open().is_some()) {
            return;
        }
        state.selected.set(Some(tag));
        state.inspections.set(vec![item]);
    });
    tag
}
