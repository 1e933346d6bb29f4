//! The library of products: the current one with its details, the others to switch to;
//! rename, duplicate, delete, export to a file and import on another device.

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{blob_of, engine, now_ms, picked_files, read_files, store, AppState, Library, PhotoRole, Product};
use crate::engine::profile::Profile;
use crate::protocol::{ProfileSummary, Request};

const CURRENT_KEY: &str = "damagelens.current";
pub const PROFILE_EXTENSION: &str = "dlprofile";

/// What the profile on its way to the engine is for.
enum PendingLoad {
    /// A product of the library becomes the current one.
    Product(String),
    /// An imported file: it joins the library once the engine has accepted it.
    Import { bytes: Vec<u8> },
}

thread_local! {
    static PENDING: RefCell<Option<PendingLoad>> = const { RefCell::new(None) };
}

fn remember_current(id: Option<&str>) {
    let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) else { return };
    let _ = match id {
        Some(id) => storage.set_item(CURRENT_KEY, id),
        None => storage.remove_item(CURRENT_KEY),
    };
}

fn remembered_current() -> Option<String> {
    web_sys::window()?.local_storage().ok()??.get_item(CURRENT_KEY).ok()?
}

/// Opens saved work and picks up where the person left off.
pub fn open(state: AppState) {
    leptos::task::spawn_local(async move {
        let library = match Library::open().await {
            Ok(library) => std::rc::Rc::new(library),
            Err(message) => return state.report(format!("{message} Work in this tab will not be saved.")),
        };
        state.library.set_value(Some(library));
        state.refresh_products().await;
        let remembered = remembered_current();
        let current = state.products.with_untracked(|ps| {
            ps.iter().find(|p| Some(&p.id) == remembered.as_ref()).or_else(|| ps.iter().rev().find(|p| p.summary.is_some())).cloned()
        });
        if let Some(product) = current {
            select(state, product).await;
        }
        super::demo::prepare(state);
    });
}

/// Makes `product` the current one: its photos are shown and its profile goes to the engine.
pub async fn select(state: AppState, product: Product) {
    remember_current(Some(&product.id));
    state.current.set(Some(product));
    state.inspections.set(Vec::new());
    state.selected.set(None);
    state.calibration.set(None);
    reload_photos(state).await;
    load_current(state);
}

pub async fn reload_photos(state: AppState) {
    let (Some(library), Some(id)) = (state.library(), state.current.with_untracked(|c| c.as_ref().map(|p| p.id.clone()))) else {
        state.photos.set(Vec::new());
        state.damaged.set(Vec::new());
        return;
    };
    match library.photos(&id).await {
        Ok(photos) => {
            let (good, damaged) = photos.into_iter().partition(|p| p.role == PhotoRole::Good);
            state.photos.set(good);
            state.damaged.set(damaged);
        }
        Err(message) => state.report(message),
    }
}

/// Hands the current product's profile to the engine, once both are there.
pub fn load_current(state: AppState) {
    let Some(product) = state.current.get_untracked().filter(|p| p.summary.is_some()) else { return };
    if state.model.with_untracked(Option::is_none) || state.loaded.get_untracked().as_deref() == Some(product.id.as_str()) {
        return;
    }
    let Some(library) = state.library() else { return };
    leptos::task::spawn_local(async move {
        match library.profile(&product.id).await {
            Ok(Some(bytes)) => {
                PENDING.with(|p| *p.borrow_mut() = Some(PendingLoad::Product(product.id.clone())));
                engine::send(state, Request::Load { file: format!("{}.{PROFILE_EXTENSION}", product.name), bytes });
            }
            Ok(None) => state.report(format!("{}: its trained profile is missing from this device. Train it again.", product.name)),
            Err(message) => state.report(message),
        }
    });
}

/// The engine recalibrated the current product: saved like a training, so a reload keeps it.
pub fn recalibrated(state: AppState, summary: ProfileSummary, bytes: Vec<u8>) {
    let Some(mut product) = state.current.get_untracked() else { return };
    product.summary = Some(summary);
    state.loaded.set(Some(product.id.clone()));
    save_and_select(state, product, bytes);
}

/// The engine accepted a profile.
pub fn loaded(state: AppState, summary: ProfileSummary) {
    match PENDING.with(|p| p.borrow_mut().take()) {
        Some(PendingLoad::Product(id)) => state.loaded.set(Some(id)),
        Some(PendingLoad::Import { bytes }) => {
            let now = now_ms();
            let product =
                Product { id: store::new_id(), name: summary.name.clone(), created_ms: now, trained_ms: Some(now), summary: Some(summary) };
            state.loaded.set(Some(product.id.clone()));
            save_and_select(state, product, bytes);
        }
        None => {}
    }
}

/// The engine refused a profile; the one it held stays active.
pub fn load_failed() {
    PENDING.with(|p| p.borrow_mut().take());
}

/// The engine trained the current product.
pub fn trained(state: AppState, summary: ProfileSummary, bytes: Vec<u8>) {
    let Some(mut product) = state.current.get_untracked() else { return };
    product.summary = Some(summary);
    product.trained_ms = Some(now_ms());
    state.loaded.set(Some(product.id.clone()));
    save_and_select(state, product, bytes);
}

fn save_and_select(state: AppState, product: Product, bytes: Vec<u8>) {
    remember_current(Some(&product.id));
    state.current.set(Some(product.clone()));
    state.inspections.set(Vec::new());
    state.selected.set(None);
    let Some(library) = state.library() else { return };
    leptos::task::spawn_local(async move {
        if let Err(message) = library.save(&product, Some(&bytes)).await {
            state.report(message);
        }
        state.refresh_products().await;
        // An imported product has no photos here: the ones shown belonged to the last one.
        reload_photos(state).await;
    });
}

/// The profile file of a product as it should leave the device: under its current name.
async fn export_bytes(library: &Library, product: &Product) -> Result<Vec<u8>, String> {
    let bytes = library
        .profile(&product.id)
        .await?
        .ok_or_else(|| format!("{}: it has not been trained yet, so there is nothing to export.", product.name))?;
    let mut profile = Profile::from_bytes(&product.name, &bytes, None).map_err(|e| e.to_string())?;
    if profile.name == product.name {
        return Ok(bytes);
    }
    profile.name = product.name.clone();
    profile.to_bytes().map_err(|e| e.to_string())
}

pub fn download(name: &str, bytes: &[u8]) -> Result<(), String> {
    let blob = blob_of(bytes)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a").map_err(|e| format!("{e:?}"))?.unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// A file name that is safe on every system.
fn file_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_alphanumeric() || " -_().".contains(c) { c } else { '_' }).collect();
    format!("{}.{PROFILE_EXTENSION}", cleaned.trim())
}

async fn duplicate(state: AppState, library: &Library, product: &Product) -> Result<(), String> {
    let now = now_ms();
    let copy = Product { id: store::new_id(), name: format!("{} (copy)", product.name), created_ms: now, ..product.clone() };
    let profile = library.profile(&product.id).await?;
    library.save(&copy, profile.as_deref()).await?;
    library.copy_photos(&library.photos(&product.id).await?, &copy.id).await?;
    state.refresh_products().await;
    Ok(())
}

fn describe(p: &Product) -> String {
    let date = |ms: f64| {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
        String::from(d.to_locale_date_string("default", &wasm_bindgen::JsValue::UNDEFINED))
    };
    match &p.summary {
        Some(s) => format!("{} · {} good photos · trained {}", s.method, s.training_images, p.trained_ms.map(date).unwrap_or_default()),
        None => format!("not trained yet · created {}", date(p.created_ms)),
    }
}

#[component]
pub fn LibraryPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let renaming = RwSignal::new(None::<String>);
    let confirm_delete = RwSignal::new(false);

    let run = move |task: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>| {
        leptos::task::spawn_local(async move {
            if let Err(message) = task.await {
                state.report(message);
            }
        });
    };
    let with_current = move |f: fn(
        AppState,
        std::rc::Rc<Library>,
        Product,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>| {
        if let (Some(library), Some(product)) = (state.library(), state.current.get_untracked()) {
            run(f(state, library, product));
        }
    };

    let on_import = move |ev: web_sys::Event| {
        let files = picked_files(&ev);
        leptos::task::spawn_local(async move {
            for file in read_files(state, files).await {
                // The engine validates the file completely; only then does it join the library.
                PENDING.with(|p| *p.borrow_mut() = Some(PendingLoad::Import { bytes: file.bytes.clone() }));
                engine::send(state, Request::Load { file: file.name, bytes: file.bytes });
            }
        });
    };

    let save_name = move || {
        let (Some(name), Some(mut product), Some(library)) = (renaming.get_untracked(), state.current.get_untracked(), state.library())
        else {
            return;
        };
        let name = name.trim().to_string();
        renaming.set(None);
        if name.is_empty() || name == product.name {
            return;
        }
        product.name = name;
        if let Some(summary) = product.summary.as_mut() {
            summary.name = product.name.clone();
        }
        state.current.set(Some(product.clone()));
        run(Box::pin(async move {
            library.save(&product, None).await?;
            state.refresh_products().await;
            Ok(())
        }));
    };

    let others = move || {
        let current = state.current.with(|c| c.as_ref().map(|p| p.id.clone()));
        state.products.get().into_iter().filter(|p| Some(&p.id) != current.as_ref()).collect::<Vec<_>>()
    };
    let busy = move || state.training.get();

    view! {
        <section class="panel" aria-labelledby="library-title">
            <h2 id="library-title">"Products"</h2>
            {move || state.current.get().map(|p| view! {
                <div class="current-product" data-testid="current-product">
                    <Show when=move || renaming.with(Option::is_some)
                        fallback=move || view! { <p class="product-name"><strong>{move || state.current.get().map(|p| p.name)}</strong></p> }>
                        <label for="rename-input">"New name"</label>
                        <input id="rename-input" type="text" data-testid="rename-input"
                            prop:value=move || renaming.get().unwrap_or_default()
                            on:input=move |ev| renaming.set(Some(event_target_value(&ev)))
                            on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { save_name() }/>
                        <button on:click=move |_| save_name()>"Save name"</button>
                    </Show>
                    <p class="hint">{describe(&p)}</p>
                    {p.summary.clone().map(|s| view! {
                        <dl class="details">
                            <dt>"Backbone"</dt><dd>{format!("{} at {} px", s.backbone, s.input_size)}</dd>
                            <dt>"Threshold"</dt><dd>{format!("{:.2}", s.threshold)}</dd>
                            <dt>"Chosen by"</dt><dd>{s.threshold_method.clone()}</dd>
                            <dt>"Model"</dt><dd>{format!("{:.1} MB{}, {:.0} M multiply-adds per photo",
                                s.cost.model_bytes as f64 / 1e6,
                                s.cost.bank_size.map(|n| format!(", {n} patches in memory")).unwrap_or_default(),
                                s.cost.multiply_adds_per_image as f64 / 1e6)}</dd>
                        </dl>
                    })}
                    <div class="actions">
                        <button class="secondary" disabled=busy on:click=move |_| renaming.set(state.current.get_untracked().map(|p| p.name))>"Rename"</button>
                        <button class="secondary" disabled=busy on:click=move |_| with_current(|state, library, product| Box::pin(async move {
                            duplicate(state, &library, &product).await
                        }))>"Duplicate"</button>
                        <button class="secondary" data-testid="profile-export" disabled=move || busy() || state.current.with(|c| c.as_ref().is_none_or(|p| p.summary.is_none()))
                            on:click=move |_| with_current(|_, library, product| Box::pin(async move {
                                let bytes = export_bytes(&library, &product).await?;
                                download(&file_name(&product.name), &bytes)
                            }))>"Export"</button>
                        <button class="secondary danger" disabled=busy on:click=move |_| confirm_delete.set(true)>"Delete"</button>
                    </div>
                    <Show when=move || confirm_delete.get()>
                        <div class="confirm" role="alertdialog" aria-label="Confirm deletion">
                            <p>{move || format!("Delete {} with its photos? This cannot be undone.", state.current.get().map(|p| p.name).unwrap_or_default())}</p>
                            <button class="danger" on:click=move |_| {
                                confirm_delete.set(false);
                                with_current(|state, library, product| Box::pin(async move {
                                    library.delete(&product.id).await?;
                                    remember_current(None);
                                    state.current.set(None);
                                    state.photos.set(Vec::new());
                                    state.damaged.set(Vec::new());
                                    state.inspections.set(Vec::new());
                                    state.refresh_products().await;
                                    Ok(())
                                }));
                            }>"Delete for good"</button>
                            <button class="secondary" on:click=move |_| confirm_delete.set(false)>"Keep it"</button>
                        </div>
                    </Show>
                </div>
            })}
            <Show when=move || !others().is_empty()>
                <h3>"Other products"</h3>
                <ul class="products" data-testid="product-list">
                    <For each=others key=|p| (p.id.clone(), p.name.clone(), p.trained_ms.map(|t| t as u64)) let:product>
                        <li>
                            <span><strong>{product.name.clone()}</strong><br/><span class="hint">{describe(&product)}</span></span>
                            <button class="secondary" disabled=busy aria-label=format!("Use {}", product.name)
                                on:click=move |_| { let p = product.clone(); leptos::task::spawn_local(select(state, p)); }>"Use"</button>
                        </li>
                    </For>
                </ul>
            </Show>
            <button class="secondary" data-testid="product-new" disabled=busy on:click=move |_| {
                remember_current(None);
                state.current.set(None);
                state.photos.set(Vec::new());
                state.damaged.set(Vec::new());
                state.inspections.set(Vec::new());
            }>"New product"</button>
            <label for="profile-import">"Import a profile file (.dlprofile)"</label>
            <input id="profile-import" type="file" accept=".dlprofile,application/octet-stream" data-testid="profile-import"
                disabled=move || busy() || state.model.with(Option::is_none) on:change=on_import/>
        </section>
    }
}
