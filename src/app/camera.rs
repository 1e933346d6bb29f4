//! The live camera: frames go to the engine one at a time (the next is taken when the
//! last one's answer is back), so the heatmap follows the item as fast as the device can
//! score, and a slow device drops frames instead of queueing them.

use std::collections::VecDeque;

use leptos::html::Video;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlCanvasElement, MediaStream, MediaStreamConstraints};

use super::actions;
use super::files::{self, blob_of};
use super::record;
use super::state::{now_ms, AppState};
use crate::protocol::UploadedFile;

/// Frames are scaled down to this side before they are encoded: the backbone sees 224 px.
const MAX_FRAME_SIDE: u32 = 480;
/// Frames per second are averaged over this many answers.
const FPS_WINDOW: usize = 10;

/// What went wrong with the camera, for a person: the way out is always the photo picker.
fn camera_problem(error: &JsValue) -> String {
    let name = js_sys::Reflect::get(error, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "SecurityError" => {
            "Camera: the browser refused access. Allow the camera for this site in the browser's settings, or pick photos instead.".into()
        }
        "NotFoundError" | "OverconstrainedError" => "Camera: this device has no camera DamageLens can use. Pick photos instead.".into(),
        "NotReadableError" => "Camera: another app is using it. Close that app and try again, or pick photos instead.".into(),
        _ => format!("Camera: it could not be started ({}). Pick photos instead.", error.as_string().unwrap_or(name)),
    }
}

/// Asks for a camera: the one chosen, else the rear one (tablets), at a modest size.
async fn open_stream(device: &str) -> Result<MediaStream, JsValue> {
    let devices = web_sys::window().ok_or("no window")?.navigator().media_devices()?;
    let video = js_sys::Object::new();
    let set = |o: &js_sys::Object, k: &str, v: &JsValue| js_sys::Reflect::set(o, &k.into(), v);
    let ideal = |v: JsValue| {
        let o = js_sys::Object::new();
        let _ = set(&o, "ideal", &v);
        o
    };
    if device.is_empty() {
        set(&video, "facingMode", &ideal("environment".into()))?;
    } else {
        let exact = js_sys::Object::new();
        set(&exact, "exact", &device.into())?;
        set(&video, "deviceId", &exact)?;
    }
    set(&video, "width", &ideal(640.into()))?;
    let constraints = js_sys::Object::new();
    set(&constraints, "video", &video)?;
    set(&constraints, "audio", &false.into())?;
    let stream = JsFuture::from(devices.get_user_media_with_constraints(constraints.unchecked_ref::<MediaStreamConstraints>())?).await?;
    Ok(stream.unchecked_into())
}

/// The cameras of this device, as (id, label); labels are known once access is granted.
async fn cameras() -> Vec<(String, String)> {
    let Some(devices) = web_sys::window().and_then(|w| w.navigator().media_devices().ok()) else { return Vec::new() };
    let Ok(promise) = devices.enumerate_devices() else { return Vec::new() };
    let Ok(list) = JsFuture::from(promise).await else { return Vec::new() };
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|d| d.dyn_into::<web_sys::MediaDeviceInfo>().ok())
        .filter(|d| d.kind() == web_sys::MediaDeviceKind::Videoinput)
        .enumerate()
        .map(|(i, d)| (d.device_id(), if d.label().is_empty() { format!("Camera {}", i + 1) } else { d.label() }))
        .collect()
}

/// A camera shown in a `<video>`: opened on a device, closed (its tracks stopped) on
/// request or when the component goes away.
#[derive(Clone, Copy)]
struct LiveVideo {
    video: NodeRef<Video>,
    stream: StoredValue<Option<MediaStream>, LocalStorage>,
    live: RwSignal<bool>,
}

impl LiveVideo {
    fn new() -> Self {
        let camera = LiveVideo { video: NodeRef::new(), stream: StoredValue::new_local(None), live: RwSignal::new(false) };
        on_cleanup(move || camera.close());
        camera
    }

    /// Opens `device` (empty: the rear camera first) in place of any open one; the error
    /// is a message for a person.
    async fn open(self, device: &str) -> Result<(), String> {
        // Switching cameras keeps `live`, so the controls stay as they are meanwhile.
        self.stop_tracks();
        let stream = open_stream(device).await.map_err(|e| {
            self.live.set(false);
            camera_problem(&e)
        })?;
        if let Some(element) = self.video.get_untracked() {
            element.set_src_object(Some(&stream));
            let _ = element.play().map(JsFuture::from);
        }
        self.stream.set_value(Some(stream));
        self.live.set(true);
        Ok(())
    }

    fn close(self) {
        self.stop_tracks();
        self.live.set(false);
    }

    fn stop_tracks(self) {
        if let Some(stream) = self.stream.get_value() {
            for track in stream.get_tracks().iter() {
                track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
            }
        }
        self.stream.set_value(None);
    }

    fn preview(self) -> impl IntoView {
        view! {
            <video node_ref=self.video class="camera-preview" class:hidden=move || !self.live.get() muted=true playsinline=true autoplay=true
                aria-label="What the camera sees"></video>
        }
    }
}

/// The current video frame as a PNG, scaled to at most `MAX_FRAME_SIDE`.
async fn grab(video: &web_sys::HtmlVideoElement) -> Result<Vec<u8>, String> {
    let (w, h) = (video.video_width(), video.video_height());
    if w == 0 || h == 0 {
        return Err("the camera sends no picture yet".into());
    }
    let scale = (MAX_FRAME_SIDE as f64 / w.max(h) as f64).min(1.0);
    let (fw, fh) = (((w as f64) * scale).round().max(1.0) as u32, ((h as f64) * scale).round().max(1.0) as u32);
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").map_err(|e| format!("{e:?}"))?.unchecked_into();
    canvas.set_width(fw);
    canvas.set_height(fh);
    let context: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").map_err(|e| format!("{e:?}"))?.ok_or("no 2D canvas")?.unchecked_into();
    context.draw_image_with_html_video_element_and_dw_and_dh(video, 0.0, 0.0, fw as f64, fh as f64).map_err(|e| format!("{e:?}"))?;
    let (send, receive) = futures::channel::oneshot::channel::<Option<web_sys::Blob>>();
    let mut send = Some(send);
    let done = Closure::<dyn FnMut(Option<web_sys::Blob>)>::new(move |blob| {
        if let Some(send) = send.take() {
            let _ = send.send(blob);
        }
    });
    canvas.to_blob_with_type(done.as_ref().unchecked_ref(), "image/png").map_err(|e| format!("{e:?}"))?;
    let blob = receive.await.ok().flatten().ok_or("the frame could not be encoded")?;
    drop(done);
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(|e| format!("{e:?}"))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

#[component]
pub fn Camera() -> impl IntoView {
    let state = expect_context::<AppState>();
    let camera = LiveVideo::new();
    let (video, live) = (camera.video, camera.live);
    let paused = RwSignal::new(false);
    let devices = RwSignal::new(Vec::<(String, String)>::new());
    let device = RwSignal::new(String::new());
    let frames = RwSignal::new(0u32);
    let fps = RwSignal::new(0.0f64);
    // The frame whose answer is awaited, and when the last answers came.
    let waiting = StoredValue::new(None::<u32>);
    let answered = StoredValue::new(VecDeque::<f64>::new());
    let last_frame = StoredValue::new_local(None::<Vec<u8>>);
    // Bumped to take a frame later (a timer cannot call `next_frame` from inside it).
    let retry = RwSignal::new(0u32);

    // While an item is open the camera is a shutter: frames are judged when they are
    // added as views, so the live loop does not replace the item's views.
    let item_open = move || state.item_session.with(|s| s.open().is_some());
    let next_frame = move || {
        let shutter = state.item_session.with_untracked(|s| s.open().is_some());
        if !live.get_untracked() || paused.get_untracked() || shutter || waiting.get_value().is_some() || !state.can_inspect() {
            return;
        }
        let Some(element) = video.get_untracked() else { return };
        waiting.set_value(Some(u32::MAX)); // taken: no second frame while this one is encoded
        leptos::task::spawn_local(async move {
            match grab(&element).await {
                Ok(bytes) => {
                    let number = frames.get_untracked() + 1;
                    let file = UploadedFile { name: format!("camera frame {number}"), bytes: bytes.clone() };
                    last_frame.set_value(Some(bytes));
                    match blob_of(&file.bytes) {
                        Ok(photo) => waiting.set_value(Some(actions::start_live(state, file, photo))),
                        Err(message) => {
                            waiting.set_value(None);
                            state.report(message);
                        }
                    }
                }
                // The first frames of a stream can be empty: try again shortly.
                Err(_) => {
                    waiting.set_value(None);
                    gloo::timers::callback::Timeout::new(100, move || retry.update(|n| *n += 1)).forget();
                }
            }
        });
    };

    Effect::new(move |_| {
        retry.track();
        // Opening an item drops the frame in flight (its answer no longer shows);
        // closing it starts the live loop again.
        if item_open() {
            waiting.set_value(None);
        }
        next_frame();
    });
    // A good photo of the product, faintly over the live picture: the item lines up with
    // how it was taught, which is how its photos are best judged.
    let guide = RwSignal::new(true);
    let reference = RwSignal::new(None::<String>);
    Effect::new(move |previous: Option<Option<String>>| {
        let url = state
            .photos
            .with(|photos| photos.first().and_then(|p| blob_of(&p.bytes).ok()))
            .and_then(|blob| web_sys::Url::create_object_url_with_blob(&blob).ok());
        if let Some(Some(old)) = previous {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        reference.set(url.clone());
        url
    });
    on_cleanup(move || {
        if let Some(url) = reference.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    });
    let views_added = RwSignal::new(0u32);
    let add_view = move |_| {
        let Some(element) = video.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            let result = match grab(&element).await {
                Ok(bytes) => {
                    views_added.update(|n| *n += 1);
                    let file = UploadedFile { name: format!("camera view {}", views_added.get_untracked()), bytes };
                    blob_of(&file.bytes).map(|photo| actions::start(state, vec![(file, photo)]))
                }
                Err(message) => Err(message),
            };
            if let Err(message) = result {
                state.report(message);
            }
        });
    };

    // An answer (or a failure) for the awaited frame frees the camera for the next one.
    Effect::new(move |_| {
        // Read the answers before anything else, so this effect always follows them.
        let answered_tags: Vec<u32> =
            state.inspections.with(|items| items.iter().filter(|i| i.reply.is_some() || i.error.is_some()).map(|i| i.tag).collect());
        let Some(tag) = waiting.get_value() else { return };
        if !answered_tags.contains(&tag) {
            return;
        }
        waiting.set_value(None);
        let now = now_ms();
        answered.update_value(|times| {
            times.push_back(now);
            while times.len() > FPS_WINDOW {
                times.pop_front();
            }
            if let (Some(first), n) = (times.front(), times.len()) {
                if n > 1 && now > *first {
                    fps.set((n - 1) as f64 * 1000.0 / (now - first));
                }
            }
        });
        frames.update(|n| *n += 1);
        next_frame();
    });

    let start = move |chosen: String| {
        leptos::task::spawn_local(async move {
            match camera.open(&chosen).await {
                Ok(()) => {
                    answered.update_value(VecDeque::clear);
                    fps.set(0.0);
                    paused.set(false);
                    devices.set(cameras().await);
                    // The picture needs a moment before its first frame.
                    gloo::timers::callback::Timeout::new(300, move || retry.update(|n| *n += 1)).forget();
                }
                Err(message) => state.report(message),
            }
        });
    };
    let save = move |_| {
        let Some(bytes) = last_frame.get_value() else { return };
        if let Some(tag) = state.selected.get_untracked() {
            leptos::task::spawn_local(record::append(state, tag, None));
        }
        if let Err(message) = files::download(&format!("damagelens-frame-{}.png", frames.get_untracked()), &bytes) {
            state.report(message);
        }
    };

    view! {
        <div class="camera">
            <div class="actions">
                <Show when=move || !live.get()
                    fallback=move || view! {
                        <button class="secondary" data-testid="camera-stop" on:click=move |_| camera.close()>"Stop camera"</button>
                    }>
                    <button data-testid="camera-start" disabled=move || !state.can_inspect() on:click=move |_| start(device.get_untracked())>
                        "Use the camera"
                    </button>
                </Show>
                <Show when=move || live.get()>
                    <button class="secondary" data-testid="camera-pause" aria-pressed=move || paused.get().to_string()
                        on:click=move |_| {
                            paused.update(|p| *p = !*p);
                            // A frozen frame is a verdict someone looked at: it is logged.
                            if let (true, Some(tag)) = (paused.get_untracked(), state.selected.get_untracked()) {
                                leptos::task::spawn_local(record::append(state, tag, None));
                            }
                            next_frame();
                        }>
                        {move || if paused.get() { "Resume" } else { "Freeze" }}
                    </button>
                    <button class="secondary" data-testid="camera-save" on:click=save>"Save frame"</button>
                    <Show when=item_open>
                        <button data-testid="camera-add-view" disabled=move || !state.can_inspect() on:click=add_view>"Add this view to the item"</button>
                    </Show>
                    <Show when=move || devices.with(|d| d.len() > 1)>
                        <label class="inline">"Camera "
                            <select data-testid="camera-select" on:change=move |ev| {
                                let id = event_target_value(&ev);
                                device.set(id.clone());
                                start(id);
                            }>
                                {move || devices.get().into_iter().map(|(id, label)| view! { <option value=id>{label}</option> }).collect_view()}
                            </select>
                        </label>
                    </Show>
                </Show>
            </div>
            <div class="camera-frame">
                {camera.preview()}
                <Show when=move || live.get() && guide.get()>
                    {move || reference.get().map(|url| view! {
                        <img class="camera-reference" data-testid="camera-reference" src=url alt=""
                            title="A good photo of the product, to line the item up with"/>
                    })}
                </Show>
            </div>
            <Show when=move || live.get()>
                <label class="inline"><input type="checkbox" data-testid="camera-guide" prop:checked=move || guide.get()
                    on:change=move |ev| guide.set(event_target_checked(&ev))/>" Show a good photo faintly over the picture, to line the item up"</label>
            </Show>
            <Show when=move || live.get()>
                <p class="hint" aria-live="off" data-testid="camera-status" data-frames=move || frames.get().to_string()
                    data-fps=move || format!("{:.2}", fps.get())>
                    {move || if item_open() {
                        "An item is open: each press of \"Add this view to the item\" judges the picture as one of its views.".to_string()
                    } else if paused.get() {
                        format!("Frozen on frame {}", frames.get())
                    } else {
                        format!("{:.1} frames per second · {} frames judged", fps.get(), frames.get())
                    }}
                </p>
            </Show>
        </div>
    }
}

/// Adding good photos from the camera: a preview and a button that saves the picture as
/// it is now, as many times as wanted. `name` is the product's name when a new one is
/// being made.
#[component]
pub fn CaptureGood(name: RwSignal<String>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let camera = LiveVideo::new();
    let (video, live) = (camera.video, camera.live);
    let taken = RwSignal::new(0u32);
    let open = move |_| {
        leptos::task::spawn_local(async move {
            if let Err(message) = camera.open("").await {
                state.report(message);
            }
        });
    };
    let capture = move |_| {
        let Some(element) = video.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            match grab(&element).await {
                Ok(bytes) => {
                    let number = taken.get_untracked() + 1;
                    let file = UploadedFile { name: format!("camera-{}-{number}.png", now_ms() as u64), bytes };
                    match actions::add_good_photos(state, &name.get_untracked(), vec![file]).await {
                        Ok(_) => taken.set(number),
                        Err(message) => state.report(message),
                    }
                }
                Err(why) => state.report(format!("Camera: {why}; try again in a moment.")),
            }
        });
    };
    view! {
        <div class="camera">
            <div class="actions">
                <Show when=move || live.get()
                    fallback=move || view! {
                        <button class="secondary" data-testid="capture-open" disabled=move || state.training() on:click=open>
                            "Take photos with the camera"
                        </button>
                    }>
                    <button data-testid="capture-take" disabled=move || state.training() on:click=capture>"Take photo"</button>
                    <button class="secondary" data-testid="capture-close" on:click=move |_| camera.close()>"Done"</button>
                </Show>
            </div>
            {camera.preview()}
            <Show when=move || { taken.get() > 0 }>
                <p class="hint" aria-live="polite">{move || format!("{} photo(s) taken with the camera", taken.get())}</p>
            </Show>
        </div>
    }
}
