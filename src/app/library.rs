//! The library of products: the current one with its details, the others to switch to;
//! rename, duplicate, delete, export to a file and import on another device.

use leptos::prelude::*;

use super::actions::{self, ImportQuestion, PROFILE_EXTENSION};
use super::files::{self, picked_files, read_files};
use super::state::{now_ms, AppState};
use super::store::{self, Library, Product};
use crate::client::versions::Change;
use crate::engine::profile::{Origin, Profile};

/// The profile file of a product as it should leave the device: under its current name,
/// with the product and version it is.
async fn export_bytes(library: &Library, product: &Product) -> Result<Vec<u8>, String> {
    let bytes = library
        .profile(&product.id)
        .await?
        .ok_or_else(|| format!("{}: it has not been trained yet, so there is nothing to export.", product.name))?;
    let mut profile = Profile::from_bytes(&product.name, &bytes, None).map_err(|e| e.to_string())?;
    // The file says which product and version it is, so importing it where the product
    // already is replaces it rather than making a copy.
    profile.name = product.name.clone();
    // A product trained before versions were kept is at its first.
    let version = product.version.unwrap_or(1);
    profile.origin = Some(Origin { product: product.id.clone(), version, trained_ms: product.trained_ms.unwrap_or(0.0) });
    profile.to_bytes().map_err(|e| e.to_string())
}

/// A file name that is safe on every system.
fn file_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_alphanumeric() || " -_().".contains(c) { c } else { '_' }).collect();
    format!("{}.{PROFILE_EXTENSION}", cleaned.trim())
}

async fn duplicate(state: AppState, library: &Library, product: &Product) -> Result<(), String> {
    let now = now_ms();
    let copy = Product { id: store::new_id(), name: format!("{} (copy)", product.name), created_ms: now, ..product.clone() };
    match library.profile(&product.id).await? {
        Some(profile) => {
            actions::keep_version(library, &copy, &profile, Change::Copied { from: product.name.clone() }, None).await?;
        }
        None => library.save(&copy).await?,
    }
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

/// Work on the library that reports its own failure.
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>;

#[component]
pub fn LibraryPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let renaming = RwSignal::new(None::<String>);
    let confirm_delete = RwSignal::new(false);

    let run = move |task: Task| {
        leptos::task::spawn_local(async move {
            if let Err(message) = task.await {
                state.report(message);
            }
        });
    };
    let with_current = move |f: fn(AppState, std::rc::Rc<Library>, Product) -> Task| {
        if let (Some(library), Some(product)) = (state.library(), state.current.get_untracked()) {
            run(f(state, library, product));
        }
    };

    // An import of an older version of a product here waits for the person's answer.
    let question = RwSignal::new(None::<ImportQuestion>);
    let on_import = move |ev: web_sys::Event| {
        let files = picked_files(&ev);
        leptos::task::spawn_local(async move {
            for file in read_files(state, files).await {
                if let Some(asked) = actions::import(state, file).await {
                    question.set(Some(asked));
                }
            }
        });
    };
    let answer = move |replace: Option<bool>| {
        let Some(q) = question.get_untracked() else { return };
        question.set(None);
        leptos::task::spawn_local(async move {
            match replace {
                Some(true) => actions::import_into(state, q.file, q.product, q.origin).await,
                Some(false) => actions::import_as_new(state, q.file, store::new_id()).await,
                None => {}
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
            library.save(&product).await?;
            state.refresh_products().await;
            Ok(())
        }));
    };

    let others = move || {
        let current = state.current.with(|c| c.as_ref().map(|p| p.id.clone()));
        state.products.get().into_iter().filter(|p| Some(&p.id) != current.as_ref()).collect::<Vec<_>>()
    };
    let busy = move || state.training();

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
                            <dt>"Method"</dt><dd data-testid="product-method">{s.method.clone()}
                                {s.method_why.clone().map(|why| view! { <span class="hint">" · "{why}</span> })}</dd>
                            <dt>"Hand-held copies"</dt><dd>{match s.choice.augment {
                                0 => "none: photos learnt as taken".to_string(),
                                n => format!("{n} shifted, turned and zoomed copies of each photo"),
                            }}</dd>
                            <dt>"Threshold"</dt><dd>{format!("{:.2}", s.threshold)}</dd>
                            <dt>"Chosen by"</dt><dd>{s.threshold_method.clone()}</dd>
                            <dt>"CHECK band"</dt><dd>{s.check.clone().map(|c| c.why).unwrap_or_else(|| "none: OK or DAMAGED only".into())}</dd>
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
                                files::download(&file_name(&product.name), &bytes)
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
                                    actions::new_product(state);
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
                            <button class="secondary" aria-label=format!("Use {}", product.name)
                                on:click=move |_| { let p = product.clone(); leptos::task::spawn_local(actions::select(state, p)); }>"Use"</button>
                        </li>
                    </For>
                </ul>
            </Show>
            <button class="secondary" data-testid="product-new" on:click=move |_| actions::new_product(state)>"New product"</button>
            <label for="profile-import">"Import a profile file (.dlprofile)"</label>
            <input id="profile-import" type="file" accept=".dlprofile,application/octet-stream" data-testid="profile-import"
                disabled=move || state.model.with(Option::is_none) on:change=on_import/>
            {move || question.get().map(|q| view! {
                <div class="confirm" role="alertdialog" aria-label="Replace with an older version?" data-testid="import-question">
                    <p>{q.ask()}</p>
                    <button class="danger" data-testid="import-replace" on:click=move |_| answer(Some(true))>"Replace it"</button>
                    <button class="secondary" data-testid="import-separate" on:click=move |_| answer(Some(false))>"Import as a separate product"</button>
                    <button class="secondary" data-testid="import-cancel" on:click=move |_| answer(None)>"Cancel"</button>
                </div>
            })}
        </section>
    }
}
