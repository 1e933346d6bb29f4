//! Inspect photos: one or many (a grid sorted by score), the chosen one large with the
//! heatmap over it, the outline of the damaged region, the verdict and the latency.

use leptos::html::Canvas;
use leptos::prelude::*;
use web_sys::HtmlCanvasElement;

use super::actions;
use super::canvas::draw_with_heatmap;
use super::files::{picked_files, read_files};
use super::record;
use super::state::{AppState, InspectionItem};
use crate::client::drift;
use crate::client::items::{group, Item, View};
use crate::client::log::{Decision, DAMAGE_KINDS};
use crate::engine::postprocess::Band;
use crate::protocol::{InspectionReply, ProductMatch, UploadedFile};

/// Widest the overlay is drawn; the photo keeps its aspect ratio.
const MAX_CANVAS_SIDE: f64 = 640.0;

fn score_of(item: &InspectionItem) -> f32 {
    item.reply.as_ref().map(|r| r.normalised_score).unwrap_or(f32::NEG_INFINITY)
}

#[component]
pub fn InspectPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas = NodeRef::<Canvas>::new();
    let opacity = RwSignal::new(0.8f64);
    let outline = RwSignal::new(true);

    let on_pick = move |ev: web_sys::Event| {
        let picked = picked_files(&ev);
        leptos::task::spawn_local(async move {
            let uploaded = read_files(state, picked.clone()).await;
            let files = uploaded
                .into_iter()
                .filter_map(|u| picked.iter().find(|f| f.name() == u.name).map(|f| (u, web_sys::Blob::from(f.clone()))))
                .collect();
            actions::start(state, files);
        });
    };

    let shown = move || {
        let tag = state.selected.get()?;
        state.inspections.with(|items| items.iter().find(|i| i.tag == tag).cloned())
    };
    Effect::new(move |_| {
        let (Some(item), Some(element)) = (shown(), canvas.get()) else { return };
        let Some(reply) = item.reply.clone() else { return };
        let (alpha, with_outline) = (opacity.get(), outline.get());
        leptos::task::spawn_local(async move {
            if let Err(message) = draw_overlay(&element, item.tag, &item.photo, &reply, alpha, with_outline).await {
                state.report(format!("{}: {message}", reply.file));
            }
        });
    });

    // Tags only: items hold browser objects, which the keyed list cannot carry.
    let sorted = move || {
        let mut items = state.inspections.get();
        items.sort_by(|a, b| score_of(b).total_cmp(&score_of(a)));
        items.into_iter().map(|i| (i.tag, i.reply.is_some(), i.error.is_some())).collect::<Vec<_>>()
    };
    // Photos of one item from several sides (`box12_front.png`, `box12_back.png`), worst item first.
    let items = move || {
        state.inspections.with(|list| {
            let mut items = group(list.iter().map(|i| (i.item.as_str(), View { tag: i.tag, band: i.reply.as_ref().map(|r| r.band) })));
            let worst = |item: &Item| {
                item.views.iter().filter_map(|v| list.iter().find(|i| i.tag == v.tag)).map(score_of).fold(f32::NEG_INFINITY, f32::max)
            };
            items.sort_by(|a, b| worst(b).total_cmp(&worst(a)));
            items
        })
    };
    let open_item = move || state.item_session.with(|s| s.open().map(str::to_string));
    let several_views = move || open_item().is_some() || items().iter().any(|i| i.views.len() > 1);
    let new_item = move |_| {
        state.item_session.update(|s| {
            s.open_new();
        });
        state.inspections.set(Vec::new());
        state.selected.set(None);
    };
    let pending = move || state.inspections.with(|items| items.iter().filter(|i| i.reply.is_none() && i.error.is_none()).count());
    let mark_good = move |_| {
        let Some(item) = shown() else { return };
        record::decide(state, item.tag, Decision::MarkedGood);
        leptos::task::spawn_local(async move {
            let file = UploadedFile { name: item.file.clone(), bytes: (*item.bytes).clone() };
            match actions::add_good_photos(state, "", vec![file.clone()]).await {
                Ok(_) => actions::learn_more(state, vec![file]),
                Err(message) => state.report(message),
            }
        });
    };

    // Whether the log says the current product's model has gone out of date.
    let drift = move || {
        let product = state.current.get()?;
        let (summary, version) = (product.summary?, product.trained_ms?);
        let warnings = state.log.with(|log| drift::check(log, &product.id, version, summary.expected_flagged.map(f64::from)));
        (!warnings.is_empty()).then_some(warnings)
    };

    // What the person decided about the shown verdict goes to the log with it.
    let kind = RwSignal::new(DAMAGE_KINDS[0].to_string());
    let decide = move |decision: Decision| {
        if let Some(tag) = state.selected.get_untracked() {
            record::decide(state, tag, decision);
        }
    };

    // Logged, and kept among the product's damaged photos for its damage head.
    let confirm_damaged = move |_| {
        decide(Decision::ConfirmedDamaged { kind: kind.get_untracked() });
        let Some(item) = shown() else { return };
        leptos::task::spawn_local(async move {
            let file = UploadedFile { name: item.file.clone(), bytes: (*item.bytes).clone() };
            if let Err(message) = actions::keep_damaged_photo(state, file).await {
                state.report(message);
            }
        });
    };

    view! {
        <section class="panel inspect" aria-labelledby="inspect-title">
            <h2 id="inspect-title">"Inspect"</h2>
            <p class="product-line" data-testid="inspect-product">{move || match state.current.get() {
                Some(p) => view! { "Product: "<strong>{p.name}</strong>" · "<a href="#/products">"change or teach"</a> }.into_any(),
                None => view! { "No product chosen · "<a href="#/products">"choose or teach one"</a> }.into_any(),
            }}</p>
            {move || drift().map(|warnings| view! {
                <div class="drift" role="status" data-testid="drift-warning">
                    <strong>"This product's model may be out of date"</strong>
                    <ul>{warnings.iter().map(|w| view! { <li>{w.message()}</li> }).collect_view()}</ul>
                    <a href="#/log">"Review the photos in the log"</a>
                </div>
            })}
            <label class="inline auto">
                <input type="checkbox" data-testid="product-auto" prop:checked=move || state.auto.get()
                    on:change=move |ev| actions::set_auto(state, event_target_checked(&ev))/>
                " Auto: recognise the product in each photo"
            </label>
            <label for="inspect-files">"Photos of items to check (one or many)"</label>
            <input id="inspect-files" type="file" multiple accept="image/png,image/jpeg" data-testid="inspect-files"
                disabled=move || !state.can_inspect() on:change=on_pick/>
            <Show when=move || !state.can_inspect()>
                <p class="hint">{move || match (state.training(), state.auto.get()) {
                    (true, _) => "Training…",
                    (false, true) => "Auto recognises trained products: train one first (or wait for the one training).",
                    (false, false) => "Choose or train a product first.",
                }}</p>
            </Show>
            <div class="actions">
                {move || match open_item() {
                    None => view! {
                        <button class="secondary" data-testid="item-new" disabled=move || !state.can_inspect() on:click=new_item
                            title="Photos picked next are views of one item (front, back, sides), judged by the worst">"New item"</button>
                    }.into_any(),
                    Some(name) => view! {
                        <p class="hint" data-testid="item-open" aria-live="polite">{format!(
                            "Adding views to {name}: pick its photos, one or several at a time."
                        )}</p>
                        <button class="secondary" data-testid="item-done" on:click=move |_| state.item_session.update(|s| s.close())>
                            "Item done"</button>
                    }.into_any(),
                }}
            </div>
            <super::camera::Camera/>
            <Show when=move || { pending() > 0 }>
                <p class="hint" aria-live="polite">{move || format!("Inspecting… {} to go", pending())}</p>
            </Show>
            {move || shown().and_then(|i| i.reply.map(|r| (i.tag, r))).and_then(|(tag, r)| r.identified.map(|m| view! {
                <ProductMatchLine tag identified=m/>
            }))}
            {move || shown().and_then(|i| i.reply).map(|r| view! {
                <div class=format!("verdict {}", r.band.as_str()) data-testid="verdict"
                    data-verdict=r.band.as_str() data-file=r.file.clone()
                    data-score=format!("{:.4}", r.normalised_score) data-raw-score=format!("{}", r.score)
                    aria-live="polite">
                    <strong>{r.band.label()}</strong>
                    {match r.capture.clone() {
                        Some(problem) => view! {
                            <span data-testid="capture-problem">{format!("Not judged: {problem}.")}</span>
                        }.into_any(),
                        None => view! {
                            <span>{format!("score {:.2} (threshold 0.50) · raw {:.1} / {:.1}", r.normalised_score, r.score, r.threshold)}</span>
                            <span class="hint">{band_hint(r.band)}</span>
                        }.into_any(),
                    }}
                    // The two parts of the heatmap: the anomaly model (the verdict) and what
                    // the product's damaged photos taught (where the damage looks like damage).
                    {r.damage.map(|p| view! {
                        <span class="hint" data-testid="damage-head" data-damage=format!("{p:.4}")>{format!(
                            "Anomaly model: the verdict above. Damage head (learnt from this product's damaged photos): \
                             {:.0}% sure there is damage like them; the heatmap shows both.", p * 100.0
                        )}</span>
                    })}
                </div>
                <p class="hint">{r.file.clone()}" · "<span data-testid="latency-ms">{format!("{:.0}", r.latency_ms)}</span>" ms on "
                    <span data-testid="inspected-on">{r.backend.label()}</span></p>
                <StageTable reply=r.clone()/>
            })}
            <canvas node_ref=canvas data-testid="heatmap" class="overlay" width="0" height="0"
                aria-label="The photo with the anomaly heatmap over it"></canvas>
            <Show when=move || shown().is_some_and(|i| i.reply.is_some())>
                <div class="controls">
                    <label for="opacity">"Heatmap opacity"</label>
                    <input id="opacity" type="range" min="0" max="1" step="0.05" data-testid="opacity"
                        prop:value=move || opacity.get().to_string()
                        on:input=move |ev| opacity.set(event_target_value(&ev).parse().unwrap_or(0.8))/>
                    <label class="inline"><input type="checkbox" data-testid="outline-toggle" prop:checked=move || outline.get()
                        on:change=move |ev| outline.set(event_target_checked(&ev))/>" Outline the damaged region"</label>
                </div>
                <div class="decide" role="group" aria-label="What you decided about this item">
                    <button class="secondary" data-testid="mark-good" disabled=move || !state.ready() on:click=mark_good
                        title="Adds this photo to the good photos and learns it into the model">"Mark as good"</button>
                    <button class="danger" data-testid="decide-damaged"
                        on:click=confirm_damaged>"Confirm damaged"</button>
                    <label class="inline">"kind "
                        <select data-testid="decide-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                            {DAMAGE_KINDS.iter().map(|k| view! { <option value=*k>{*k}</option> }).collect_view()}
                        </select>
                    </label>
                    <button class="secondary" data-testid="decide-aside" on:click=move |_| decide(Decision::SetAside)>"Set aside"</button>
                    <p class="hint" data-testid="decision" aria-live="polite">{move || {
                        state.selected.get().and_then(|tag| record::decision_of(state, tag)).map(|d| format!("Logged: {}.", d.label()))
                    }}</p>
                </div>
            </Show>
            <Show when=move || state.inspections.with(|i| i.len() > 1) && !several_views()>
                <ul class="results" data-testid="results-grid" aria-label="Results, highest score first">
                    <For each=sorted key=|k| *k let:key>
                        <ResultTile tag=key.0/>
                    </For>
                </ul>
            </Show>
            <Show when=several_views>
                <ul class="items" data-testid="items" aria-label="Items, each with its views, worst first">
                    <For each=items key=|i| (i.key.clone(), i.views.clone().into_iter().map(|v| (v.tag, v.band)).collect::<Vec<_>>()) let:item>
                        <ItemGroup item/>
                    </For>
                </ul>
            </Show>
            <super::demo::DemoSamples/>
        </section>
    }
}

/// Which product Auto recognised, how sure it is and the runner-up; for an unknown
/// product, the ways on: say which product it is, or teach it as a new one.
#[component]
fn ProductMatchLine(tag: u32, identified: ProductMatch) -> impl IntoView {
    let state = expect_context::<AppState>();
    let name_of = move |id: &str| state.products.with_untracked(|ps| ps.iter().find(|p| p.id == id).map(|p| p.name.clone()));
    let runner_up = identified.runner_up.as_deref().and_then(name_of);
    match identified.product.as_deref() {
        Some(id) => {
            let name = name_of(id).unwrap_or_else(|| "a product no longer here".into());
            let rival = runner_up.map(|r| format!(" · runner-up: {r}")).unwrap_or_default();
            let attribute = name.clone();
            view! {
                <p class="match" data-testid="product-match" data-product=attribute
                    data-confidence=format!("{:.3}", identified.confidence) aria-live="polite">
                    "Recognised: "<strong>{name}</strong>{format!(" · confidence {:.0}%{rival}", identified.confidence * 100.0)}
                </p>
            }
            .into_any()
        }
        None => {
            let trained: Vec<(String, String)> =
                state.products.get_untracked().into_iter().filter(|p| p.summary.is_some()).map(|p| (p.id, p.name)).collect();
            let nearest = runner_up.map(|r| format!(" The nearest is {r}, and it is too far.")).unwrap_or_default();
            view! {
                <div class="match unknown" data-testid="product-match" data-product="" role="status">
                    <p><strong>"Unknown product"</strong>{format!(": none of the products on this device.{nearest}")}</p>
                    <label for="unknown-pick">"It is"</label>
                    <select id="unknown-pick" data-testid="unknown-pick"
                        on:change=move |ev| { let id = event_target_value(&ev); if !id.is_empty() { actions::judge_as(state, tag, id) } }>
                        <option value="">"choose the product…"</option>
                        {trained.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </select>
                    <button class="secondary" data-testid="unknown-teach" on:click=move |_| {
                        actions::set_auto(state, false);
                        actions::new_product(state);
                        if let Some(title) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("train-title")) {
                            title.scroll_into_view();
                        }
                    }>"Teach it as a new product"</button>
                </div>
            }
            .into_any()
        }
    }
}

/// What each verdict asks of the person.
fn band_hint(band: Band) -> &'static str {
    match band {
        Band::Ok => "Looks like the good photos.",
        Band::Check => "Unsure: look at the item yourself before it goes on.",
        Band::Damaged => "Set it aside.",
    }
}

/// One item: its verdict (its worst view's) and every view with its heatmap a click away.
#[component]
fn ItemGroup(item: Item) -> impl IntoView {
    let band = item.band();
    let (label, verdict) = band.map_or(("…", "pending"), |b| (b.label(), b.as_str()));
    let views = item.views.len();
    view! {
        <li class=format!("item {verdict}") data-testid="item" data-item=item.key.clone() data-verdict=verdict data-views=views>
            <p class="item-head"><strong>{item.key.clone()}</strong>" · "<span class="status">{label}</span>
                {format!(" · {views} view{}, judged by the worst", if views == 1 { "" } else { "s" })}</p>
            <ul class="results">
                {item.views.iter().map(|v| view! { <ResultTile tag=v.tag/> }).collect_view()}
            </ul>
        </li>
    }
}

#[component]
fn ResultTile(tag: u32) -> impl IntoView {
    let state = expect_context::<AppState>();
    let Some(item) = state.inspections.with_untracked(|items| items.iter().find(|i| i.tag == tag).cloned()) else {
        return ().into_any();
    };
    let url = web_sys::Url::create_object_url_with_blob(&item.photo).unwrap_or_default();
    let revoke = url.clone();
    on_cleanup(move || {
        let _ = web_sys::Url::revoke_object_url(&revoke);
    });
    let (status, class) = match (&item.reply, &item.error) {
        (Some(r), _) => match &r.capture {
            Some(problem) => (format!("{}: {problem}", r.band.label()), r.band.as_str()),
            None => (format!("{} {:.2}", r.band.label(), r.normalised_score), r.band.as_str()),
        },
        (None, Some(_)) => ("could not be inspected".to_string(), "failed"),
        (None, None) => ("…".to_string(), "pending"),
    };
    view! {
        <li class=format!("result {class}")>
            <button class="tile" class:selected=move || state.selected.get() == Some(tag)
                aria-label=format!("{}: {status}", item.file) on:click=move |_| state.selected.set(Some(tag))>
                <img src=url alt="" width="96" height="96"/>
                <span class="name">{item.file.clone()}</span>
                <span class="status">{status.clone()}</span>
            </button>
        </li>
    }
    .into_any()
}

/// Draws the photo with its heatmap and outline on the panel's canvas.
async fn draw_overlay(
    canvas: &HtmlCanvasElement,
    tag: u32,
    file: &web_sys::Blob,
    reply: &InspectionReply,
    opacity: f64,
    outline: bool,
) -> Result<(), String> {
    draw_with_heatmap(canvas, file, reply, MAX_CANVAS_SIDE, opacity, outline).await?;
    // Tells a test (or a screen reader script) what is on the canvas now.
    canvas.set_attribute("data-drawn", &format!("{tag}:{outline}")).map_err(|e| format!("{e:?}"))
}

/// Where one inspection's time went, stage by stage, in a details panel.
#[component]
fn StageTable(reply: InspectionReply) -> impl IntoView {
    let t = reply.stages;
    let rows = [
        ("preprocess", "Decode and resize", t.preprocess),
        ("backbone", "Backbone (CNN)", t.backbone),
        ("scoring", "Patch scoring", t.scoring),
        ("postprocess", "Map, heatmap and verdict", t.postprocess),
        ("readback", "Reading back from the GPU", t.readback),
    ];
    view! {
        <details class="stages" data-testid="stage-times" data-backend=reply.backend.label()>
            <summary>{format!("Details: {} backend, {:.0} ms in the engine", reply.backend.label(), t.total())}</summary>
            <table>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|(key, name, ms)| view! {
                            <tr data-stage=key><th scope="row">{name}</th><td>{format!("{ms:.1} ms")}</td></tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
        </details>
    }
}
