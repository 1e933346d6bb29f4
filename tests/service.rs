//! The engine service driven natively exactly as the page drives it in the browser:
//! calls with ids in, events out. Real backbone, real ELPV cells.

mod common;

use std::cell::Cell;

use damagelens::engine::gpu::{GpuError, GpuInspection, InspectError};
use damagelens::engine::identify::GlobalEmbedding;
use damagelens::engine::inspector::Inspector;
use damagelens::engine::postprocess::Band;
use damagelens::engine::profile::Profile;
use damagelens::eval::dataset::parse;
use damagelens::protocol::{
    Backend, Call, DamagedPhoto, EvalModel, EvalReply, EvalRequest, Event, FailureKind, KnownProfile, MaskFile, MethodChoice, Reply,
    Request, Status, TrainChoice, UploadedFile,
};
use damagelens::service::{GpuBackend, Service};
use futures::executor::block_on;

/// A GPU that judges like the CPU (it runs the CPU inspector) until told to fail.
struct FakeGpu {
    cpu: Inspector,
    fail_after: Cell<Option<usize>>,
    inspected: Cell<usize>,
}

impl GpuBackend for FakeGpu {
    fn adapter_name(&self) -> String {
        "fake adapter".into()
    }

    async fn load_profile(&mut self, _profile: &Profile) -> Result<(), GpuError> {
        Ok(())
    }

    async fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8], embed: bool) -> Result<GpuInspection, InspectError> {
        if self.fail_after.get().is_some_and(|n| self.inspected.get() >= n) {
            return Err(GpuError::Execution { op: "conv", reason: "device lost".into() }.into());
        }
        self.inspected.set(self.inspected.get() + 1);
        let (inspection, times) = self.cpu.inspect_timed(profile, file, bytes)?;
        let embedding = match embed {
            true => Some(GlobalEmbedding::from_maps(&self.cpu.feature_maps(file, bytes, profile.even_brightness)?.0)?),
            false => None,
        };
        Ok(GpuInspection { inspection, times, embedding })
    }

    fn destroy_device(&self) {
        self.fail_after.set(Some(0));
    }
}

fn inspector() -> Inspector {
    let (manifest, onnx) = common::backbone();
    Inspector::new(manifest, &onnx).unwrap()
}

fn ready_service() -> Service<FakeGpu> {
    let mut service = Service::new(|| 0);
    assert!(matches!(service.backbone_loaded(Ok(inspector())), Status::Ready { .. }));
    service
}

fn file(path: &str) -> UploadedFile {
    UploadedFile { name: path.rsplit('/').next().unwrap().to_string(), bytes: common::read(path) }
}

/// Serves one call; returns every event it produced.
fn serve(service: &mut Service<FakeGpu>, id: u64, request: Request) -> Vec<Event> {
    let mut events = Vec::new();
    block_on(service.handle(Call { id, request }, &mut |e| events.push(e)));
    events
}

/// The reply of a call that must succeed; its other events are checked to carry its id.
fn reply(service: &mut Service<FakeGpu>, id: u64, request: Request) -> Reply {
    let mut events = serve(service, id, request);
    let last = events.pop().expect("a call always ends with an event");
    assert!(events.iter().all(|e| e.call().is_none_or(|c| c == id)), "{events:?}");
    match last {
        Event::Done { id: answered, reply } if answered == id => *reply,
        other => panic!("call {id} did not succeed: {other:?}"),
    }
}

fn failure(service: &mut Service<FakeGpu>, id: u64, request: Request) -> damagelens::protocol::Failure {
    match serve(service, id, request).pop() {
        Some(Event::Failed { id: answered, error }) if answered == id => error,
        other => panic!("call {id} should have failed: {other:?}"),
    }
}

fn train(service: &mut Service<FakeGpu>, id: u64, name: &str, good: &[String]) -> Vec<u8> {
    train_learning(service, id, name, good).0
}

/// [`train`], with the learning state that came back.
fn train_learning(service: &mut Service<FakeGpu>, id: u64, name: &str, good: &[String]) -> (Vec<u8>, Vec<u8>) {
    let files = good.iter().map(|p| file(p)).collect();
    let product = Some(format!("id-{name}"));
    match reply(service, id, Request::Train { name: name.into(), product, choice: TrainChoice::default(), files }) {
        Reply::Trained { profile, bytes, learning, added } => {
            assert_eq!((profile.name.as_str(), profile.training_images, added), (name, good.len(), good.len()));
            (bytes, learning)
        }
        other => panic!("{other:?}"),
    }
}

fn inspected(service: &mut Service<FakeGpu>, id: u64, path: &str) -> damagelens::protocol::InspectionReply {
    match reply(service, id, Request::Inspect { file: file(path), identify: false }) {
        Reply::Inspected { result } => result,
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_works_before_the_backbone_and_a_profile() {
    let mut service = Service::<FakeGpu>::new(|| 0);
    let good = common::elpv_mono("0.0");
    let early = failure(&mut service, 1, Request::Inspect { file: file(&good[0]), identify: false });
    assert_eq!(early.kind, FailureKind::BackboneNotLoaded);
    assert!(early.message.contains("not loaded yet"), "{}", early.message);
    service.backbone_loaded(Err("models/efficientnet_lite0.onnx: 404".into()));
    let failed =
        failure(&mut service, 2, Request::Train { name: "x".into(), product: None, choice: TrainChoice::default(), files: vec![] });
    assert_eq!(failed.kind, FailureKind::BackboneNotLoaded);
    assert!(failed.message.contains("404"), "the reason travels: {}", failed.message);

    let mut service = ready_service();
    assert_eq!(failure(&mut service, 3, Request::Inspect { file: file(&good[0]), identify: false }).kind, FailureKind::NoProfile);
}

#[test]
fn train_load_inspect_and_calibrate_through_the_service() {
    let mut service = ready_service();
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    let mut files: Vec<UploadedFile> = good[..20].iter().map(|p| file(p)).collect();
    files.insert(3, UploadedFile { name: "notes.txt".into(), bytes: b"not a photo".to_vec() });
    let events = serve(&mut service, 7, Request::Train { name: "cells".into(), product: None, choice: TrainChoice::default(), files });
    let skipped: Vec<&String> =
        events.iter().filter_map(|e| if let Event::Skipped { message, .. } = e { Some(message) } else { None }).collect();
    assert!(skipped.len() == 1 && skipped[0].contains("notes.txt"), "{skipped:?}");
    let progress: Vec<(usize, usize)> =
        events.iter().filter_map(|e| if let Event::Progress { done, total, .. } = e { Some((*done, *total)) } else { None }).collect();
    assert_eq!(progress.len(), 21);
    assert_eq!(progress.last(), Some(&(21, 21)));
    let trained = match events.last() {
        Some(Event::Done { id: 7, reply }) => match reply.as_ref() {
            Reply::Trained { bytes, .. } => bytes.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };

    let crack = inspected(&mut service, 8, &cracked[0]);
    let ok = inspected(&mut service, 9, &good[30]);
    assert!(crack.score > ok.score, "{} vs {}", crack.score, ok.score);
    assert_eq!(crack.backend, Backend::Cpu);

    // Another product replaces it; loading the first file back gives the same scores, bit for bit.
    train(&mut service, 10, "other", &good[40..52]);
    assert!(matches!(
        reply(&mut service, 11, Request::Load { file: "cells.dlprofile".into(), product: None, bytes: trained }),
        Reply::Loaded { .. }
    ));
    assert_eq!(inspected(&mut service, 12, &cracked[0]).score.to_bits(), crack.score.to_bits());

    // A broken file leaves the active profile as it was.
    let refused = failure(&mut service, 13, Request::Load { file: "broken.dlprofile".into(), product: None, bytes: b"garbage".to_vec() });
    assert_eq!(refused.kind, FailureKind::Refused);
    assert!(refused.message.contains("broken.dlprofile"), "{}", refused.message);
    assert_eq!(service.active_profile().unwrap().name, "cells");

    // Calibration: held-out good photos and damaged ones, scored once.
    let damaged = cracked[1..4].iter().map(|p| DamagedPhoto { photo: file(p), mask: None, category: None }).collect();
    let good_files = good[..20].iter().map(|p| file(p)).collect();
    match reply(&mut service, 14, Request::Calibrate { good: good_files, damaged }) {
        Reply::CalibrationScored { scores, problems } => {
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!((scores.good.len(), scores.damaged.len()), (4, 3));
        }
        other => panic!("{other:?}"),
    }
    let mut calibration = service.active_profile().unwrap().calibration.clone();
    calibration.threshold = f32::NAN;
    assert_eq!(failure(&mut service, 15, Request::SetCalibration { calibration: calibration.clone() }).kind, FailureKind::Evaluation);
    calibration.threshold = crack.score + 1.0;
    assert!(matches!(reply(&mut service, 16, Request::SetCalibration { calibration }), Reply::Calibrated { .. }));
    assert_ne!(inspected(&mut service, 17, &cracked[0]).band, Band::Damaged, "the new threshold is the one used");
    let mut calibration = service.active_profile().unwrap().calibration.clone();
    calibration.threshold = ok.score - 0.001;
    reply(&mut service, 18, Request::SetCalibration { calibration });
    assert_eq!(inspected(&mut service, 19, &good[30]).band, Band::Damaged);
}

/// Calibration with damaged photos teaches the product what damage looks like: the
/// head comes with the calibration applied, survives the profile file, shows in the
/// heatmap and says how sure it is, while the score (the verdict) stays the anomaly
/// model's.
#[test]
fn calibrating_with_damaged_photos_adds_a_damage_head_that_shows_where_and_leaves_the_verdict() {
    let mut service = ready_service();
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    train(&mut service, 1, "cells", &good[..20]);
    let before: Vec<_> =
        cracked[6..12].iter().chain(&good[40..46]).enumerate().map(|(i, p)| inspected(&mut service, 10 + i as u64, p)).collect();
    assert!(before.iter().all(|r| r.damage.is_none()));
    let damaged = cracked[..6].iter().map(|p| DamagedPhoto { photo: file(p), mask: None, category: None }).collect();
    let good_files = good[..20].iter().map(|p| file(p)).collect();
    match reply(&mut service, 2, Request::Calibrate { good: good_files, damaged }) {
        Reply::CalibrationScored { problems, .. } => assert!(problems.is_empty(), "{problems:?}"),
        other => panic!("{other:?}"),
    }
    let calibration = service.active_profile().unwrap().calibration.clone();
    let bytes = match reply(&mut service, 3, Request::SetCalibration { calibration }) {
        Reply::Calibrated { profile, bytes } => {
            assert_eq!(profile.damage_head, Some(6));
            bytes
        }
        other => panic!("{other:?}"),
    };
    reply(&mut service, 4, Request::Load { file: "cells.dlprofile".into(), product: None, bytes });
    let after: Vec<_> =
        cracked[6..12].iter().chain(&good[40..46]).enumerate().map(|(i, p)| inspected(&mut service, 20 + i as u64, p)).collect();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((a.score.to_bits(), a.band), (b.score.to_bits(), b.band), "{}: the verdict is the anomaly model's", a.file);
        assert_ne!(a.heatmap, b.heatmap, "{}: the heatmap shows the head too", a.file);
    }
    let sure: Vec<f32> = after.iter().map(|r| r.damage.expect("the head says how sure it is")).collect();
    let (on_cracks, on_good) = sure.split_at(6);
    eprintln!("damage head: cracked {on_cracks:?}, good {on_good:?}");
    let ranking = damagelens::engine::chooser::pairwise_auroc(on_cracks, on_good).unwrap();
    assert!(ranking >= 0.75, "the head tells unseen cracked cells from good ones: {ranking}");
}

/// Mark as good through the service: the new photo alone goes through the backbone
/// (one progress step), and the product comes out exactly as training on all its photos.
#[test]
fn a_trained_product_learns_one_more_photo_without_relearning_the_others() {
    let mut service = ready_service();
    let good = common::elpv_mono("0.0");
    let cracked = &common::elpv_mono("1.0")[0];
    let (bytes, learning) = train_learning(&mut service, 1, "cells", &good[..12]);
    let learn = |profile: Vec<u8>, learning: Vec<u8>, more: &[String]| Request::Learn {
        name: "cells".into(),
        product: Some("id-cells".into()),
        profile: UploadedFile { name: "cells.dlprofile".into(), bytes: profile },
        learning: UploadedFile { name: "cells.learning".into(), bytes: learning },
        files: more.iter().map(|p| file(p)).collect(),
    };
    let mut events = serve(&mut service, 2, learn(bytes.clone(), learning.clone(), &good[12..13]));
    let progress: Vec<(usize, usize)> =
        events.iter().filter_map(|e| if let Event::Progress { done, total, .. } = e { Some((*done, *total)) } else { None }).collect();
    assert_eq!(progress, vec![(1, 1)], "only the new photo is run");
    let (learnt_score, learnt) = match events.pop() {
        Some(Event::Done { reply, .. }) => match *reply {
            Reply::Trained { profile, bytes, learning, added } => {
                assert_eq!((profile.training_images, added), (13, 1));
                (inspected(&mut service, 3, cracked).score, (bytes, learning))
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    train(&mut service, 4, "cells", &good[..13]);
    assert_eq!(inspected(&mut service, 5, cracked).score, learnt_score, "exactly the score of training on all 13");
    // The old state does not belong to the new model: refused, and the active product stays.
    let (newer, _) = train_learning(&mut service, 6, "cells", &good[..13]);
    let refused = failure(&mut service, 7, learn(newer, learning, &good[13..14]));
    assert_eq!(refused.kind, FailureKind::LearningState, "{}", refused.message);
    assert!(refused.message.contains("Train the product again"), "{}", refused.message);
    assert_eq!(inspected(&mut service, 8, cracked).score, learnt_score);
    // The state a Learn returns goes on learning.
    match reply(&mut service, 9, learn(learnt.0, learnt.1, &good[13..14])) {
        Reply::Trained { profile, added, .. } => assert_eq!((profile.training_images, added), (14, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_gpu_that_fails_mid_frame_hands_the_same_photo_to_the_cpu_and_says_so() {
    let mut service = ready_service();
    let gpu = FakeGpu { cpu: inspector(), fail_after: Cell::new(Some(1)), inspected: Cell::new(0) };
    let Status::Backend(status) = service.gpu_started(Ok(gpu)) else { panic!() };
    assert_eq!((status.active, status.adapter.as_deref()), (Backend::WebGpu, Some("fake adapter")));
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    train(&mut service, 1, "cells", &good[..12]);
    assert_eq!(inspected(&mut service, 2, &cracked[0]).backend, Backend::WebGpu);

    // The device fails on the next frame: the notice comes first, then the CPU's answer.
    let events = serve(&mut service, 3, Request::Inspect { file: file(&cracked[1]), identify: false });
    let [Event::Status(Status::Backend(notice)), Event::Done { id: 3, reply: answer }] = events.as_slice() else { panic!("{events:?}") };
    let Reply::Inspected { result } = answer.as_ref() else { panic!("{answer:?}") };
    assert_eq!(notice.active, Backend::Cpu);
    assert!(notice.notice.as_deref().is_some_and(|n| n.contains("CPU") && n.contains("device lost")), "{notice:?}");
    assert!(notice.unavailable.is_some());
    assert_eq!(result.backend, Backend::Cpu);
    let cpu = inspector().inspect(service.active_profile().unwrap(), "again", &common::read(&cracked[1])).unwrap();
    assert_eq!(result.score, cpu.score, "the same photo, judged on the CPU");

    // It stays on the CPU, and WebGPU is no longer offered.
    assert_eq!(inspected(&mut service, 4, &cracked[2]).backend, Backend::Cpu);
    let Reply::Backend(status) = reply(&mut service, 5, Request::SetBackend { backend: Backend::WebGpu }) else { panic!() };
    assert_eq!(status.active, Backend::Cpu);
    assert!(status.notice.is_some_and(|n| n.contains("cannot be used")));
}

#[test]
fn a_photo_the_gpu_refuses_is_not_retried_on_the_cpu() {
    let mut service = ready_service();
    service.gpu_started(Ok(FakeGpu { cpu: inspector(), fail_after: Cell::new(None), inspected: Cell::new(0) }));
    train(&mut service, 1, "cells", &common::elpv_mono("0.0")[..12]);
    let bad = failure(
        &mut service,
        2,
        Request::Inspect { file: UploadedFile { name: "cut.png".into(), bytes: b"\x89PNG\r\n\x1a\n".to_vec() }, identify: false },
    );
    assert_eq!(bad.kind, FailureKind::Refused);
    assert!(bad.message.contains("cut.png"));
    assert!(
        matches!(reply(&mut service, 3, Request::SetBackend { backend: Backend::WebGpu }), Reply::Backend(s) if s.active == Backend::WebGpu)
    );
}

/// The evaluation sequence the page streams, step by step, with a cancel between two items.
#[test]
fn an_evaluation_through_the_service_and_its_cancel() {
    let mut service = ready_service();
    let files = common::elpv_upload();
    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let dataset = parse(&paths, None).unwrap();
    let upload = |path: &str| UploadedFile { name: path.into(), bytes: common::read(&files.iter().find(|(p, _)| p == path).unwrap().1) };
    let step = |service: &mut Service<FakeGpu>, id, step| match reply(service, id, Request::Eval(step)) {
        Reply::Eval(reply) => reply,
        other => panic!("{other:?}"),
    };

    // Good-score statistics need good photos: the held-out ones from training serve.
    let sigma = damagelens::eval::threshold::ThresholdMethod::NormalSigma { k: 3.0 };
    let begin =
        EvalRequest::Begin { model: EvalModel::Train { name: "cells".into(), method: MethodChoice::Padim }, threshold: Some(sigma) };
    assert_eq!(step(&mut service, 1, begin.clone()), EvalReply::Began);
    let mut id = 2;
    for path in &dataset.train {
        assert_eq!(step(&mut service, id, EvalRequest::TrainImage { file: upload(path) }), EvalReply::Done { problems: vec![] });
        id += 1;
    }
    assert!(matches!(step(&mut service, id, EvalRequest::Fit), EvalReply::Fitted { .. }));
    let EvalReply::ThresholdChosen { explanation, .. } = step(&mut service, id + 1, EvalRequest::ChooseThreshold) else { panic!() };
    // 12 training photos: every 5th usable one (2) was held out.
    assert!(explanation.contains("standard deviations") && explanation.contains("2 good photos"), "{explanation}");
    let sample = |s: &damagelens::eval::dataset::Sample| EvalRequest::Sample {
        sample: s.clone(),
        image: upload(&s.path),
        mask: MaskFile::None,
        calibration: false,
    };
    step(&mut service, id + 2, sample(&dataset.test[0]));
    // Cancel between two items: the evaluation is dropped, the next step fails plainly.
    assert_eq!(step(&mut service, id + 3, EvalRequest::Cancel), EvalReply::Cancelled);
    let after = failure(&mut service, id + 4, Request::Eval(sample(&dataset.test[1])));
    assert_eq!(after.kind, FailureKind::Evaluation);
    assert!(after.message.contains("start it again"), "{}", after.message);
    let finish = failure(&mut service, id + 5, Request::Eval(EvalRequest::Finish { gallery: 0 }));
    assert_eq!(finish.kind, FailureKind::Evaluation);

    // Out of order: judging before training fails, and frees the evaluation.
    step(&mut service, id + 6, begin);
    assert_eq!(failure(&mut service, id + 7, Request::Eval(EvalRequest::ChooseThreshold)).kind, FailureKind::Evaluation);
    assert_eq!(failure(&mut service, id + 8, Request::Eval(EvalRequest::Fit)).kind, FailureKind::Evaluation);
}

/// Two calls in flight: the worker serves them in order, and each event carries the
/// id of the call it answers, so the page's table hands each answer to its caller.
#[test]
fn interleaved_calls_are_answered_by_id() {
    use damagelens::client::calls::{answer, Calls};
    let mut service = ready_service();
    let good = common::elpv_mono("0.0");
    train(&mut service, 1, "cells", &good[..12]);
    let cracked = common::elpv_mono("1.0");
    let mut calls = Calls::default();
    let (first, a) = calls.start(Request::Inspect { file: file(&cracked[0]), identify: false }, None);
    let (second, b) = calls.start(Request::Inspect { file: file(&good[40]), identify: false }, None);
    // The engine happens to serve the second first.
    for call in [second, first] {
        let mut events = Vec::new();
        block_on(service.handle(call, &mut |e| events.push(e)));
        events.into_iter().for_each(|e| {
            calls.route(e);
        });
    }
    let (Ok(Reply::Inspected { result: crack }), Ok(Reply::Inspected { result: fine })) = (block_on(answer(a)), block_on(answer(b))) else {
        panic!()
    };
    assert_eq!(crack.file, file(&cracked[0]).name);
    assert_eq!(fine.file, file(&good[40]).name);
    assert!(crack.score > fine.score, "{} vs {}", crack.score, fine.score);
}

fn inspect_auto(service: &mut Service<FakeGpu>, id: u64, path: &str) -> Reply {
    reply(service, id, Request::Inspect { file: file(path), identify: true })
}

/// Auto: the engine says which product a photo shows before judging it; a photo of the
/// product it holds is judged at once (with the same score as without identification),
/// one of another product is sent back to be loaded, and something else is an unknown
/// product, checked by a person instead of scored.
#[test]
fn photos_are_identified_among_the_known_products_before_they_are_judged() {
    let mut service = ready_service();
    let (mono, poly) = (common::elpv("0.0", "mono"), common::elpv("0.0", "poly"));
    let cracked_poly = common::elpv("1.0", "poly");
    assert_eq!(failure(&mut service, 1, Request::Inspect { file: file(&mono[30]), identify: true }).kind, FailureKind::NoProfile);
    let mono_profile = train(&mut service, 2, "mono", &mono[..12]);
    let poly_profile = train(&mut service, 3, "poly", &poly[..12]);
    let known = |product: &str, bytes: &[u8]| KnownProfile {
        product: product.into(),
        profile: UploadedFile { name: format!("{product}.dlprofile"), bytes: bytes.to_vec() },
    };
    let broken = KnownProfile { product: "c".into(), profile: UploadedFile { name: "c.dlprofile".into(), bytes: b"junk".to_vec() } };
    match reply(
        &mut service,
        4,
        Request::Recognise { products: vec![known("id-mono", &mono_profile), known("id-poly", &poly_profile), broken] },
    ) {
        Reply::Recognising { products, skipped } => {
            assert_eq!(products, ["id-mono", "id-poly"]);
            assert!(skipped.len() == 1 && skipped[0].contains("c.dlprofile"), "{skipped:?}");
        }
        other => panic!("{other:?}"),
    }

    // The engine holds poly (trained last): a damaged poly cell is judged, as poly.
    let plain = inspected(&mut service, 5, &cracked_poly[0]);
    let Reply::Inspected { result } = inspect_auto(&mut service, 6, &cracked_poly[0]) else { panic!() };
    let matched = result.identified.clone().unwrap();
    assert_eq!((matched.product.as_deref(), matched.runner_up.as_deref()), (Some("id-poly"), Some("id-mono")));
    assert!(matched.confidence > 0.0 && matched.confidence <= 1.0, "{matched:?}");
    assert_eq!(result.score.to_bits(), plain.score.to_bits(), "identification shares the backbone run, not the verdict");

    // A mono cell while poly is held: not judged; load mono and ask again.
    match inspect_auto(&mut service, 7, &mono[30]) {
        Reply::Recognised { identified, .. } => assert_eq!(identified.product.as_deref(), Some("id-mono")),
        other => panic!("{other:?}"),
    }
    reply(&mut service, 8, Request::Load { file: "mono.dlprofile".into(), product: Some("id-mono".into()), bytes: mono_profile });
    let Reply::Inspected { result } = inspect_auto(&mut service, 9, &mono[30]) else { panic!() };
    assert_eq!(result.identified.unwrap().product.as_deref(), Some("id-mono"));
    assert_eq!(result.capture, None);

    // On the GPU the frame's own feature maps identify it: same answer, judged there.
    let gpu = FakeGpu { cpu: inspector(), fail_after: Cell::new(None), inspected: Cell::new(0) };
    service.gpu_started(Ok(gpu));
    let Reply::Inspected { result } = inspect_auto(&mut service, 11, &mono[31]) else { panic!() };
    assert_eq!((result.identified.unwrap().product.as_deref(), result.backend), (Some("id-mono"), Backend::WebGpu));
    match inspect_auto(&mut service, 12, &cracked_poly[1]) {
        Reply::Recognised { identified, .. } => assert_eq!(identified.product.as_deref(), Some("id-poly")),
        other => panic!("{other:?}"),
    }

    // A cat is none of them: CHECK, with the reason, no score.
    let Reply::Inspected { result } = inspect_auto(&mut service, 13, "tests/data/skimage/chelsea.png") else { panic!() };
    assert_eq!((result.band, result.score), (Band::Check, 0.0));
    assert_eq!(result.identified.unwrap().product, None);
    assert!(result.capture.unwrap().contains("not a product on this device"));
}
