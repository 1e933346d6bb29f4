//! The evaluation the browser streams into its worker, one photo at a time, on real ELPV
//! cells: it must give the report `damagelens eval` gives (same functions, same split),
//! its exports must agree, and the worst cases must come with their heatmaps.

mod common;

use damagelens::engine::inspector::Inspector;
use damagelens::engine::settings::TrainSettings;
use damagelens::eval::dataset::parse;
use damagelens::eval::metrics::auroc;
use damagelens::eval::report::Report;
use damagelens::eval::session::EvalSession;

#[test]
fn a_streamed_evaluation_reports_like_the_cli_and_shows_its_worst_cases() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    // A dataset as a folder upload lists it: paths inside the folder, files by path.
    let files = common::elpv_upload();
    let bytes_of = |path: &str| common::read(&files.iter().find(|(p, _)| p == path).unwrap().1);
    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let dataset = parse(&paths, None).unwrap();

    let mut session = EvalSession::training(&inspector, "cells", &TrainSettings::padim(), None).unwrap();
    let first = &dataset.test[0];
    assert!(session.add_sample(first, &bytes_of(&first.path), None, false).is_err(), "nothing is judged before the model is trained");
    for path in &dataset.train {
        session.add_training_image(path, &bytes_of(path)).unwrap();
    }
    assert_eq!(session.fit().unwrap().training_images, 12);
    let (threshold, why) = session.choose_threshold().unwrap();
    assert_eq!(threshold, session.evaluated_profile().unwrap().calibration.threshold);
    assert!(why.contains("held-out good photos"), "{why}");
    for sample in &dataset.test {
        let problems = session.add_sample(sample, &bytes_of(&sample.path), None, false).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }
    let broken = damagelens::eval::dataset::Sample { path: "test/good/broken.png".into(), ..first.clone() };
    assert!(session.add_sample(&broken, b"\x89PNG\r\n\x1a\nnonsense", None, false).is_err(), "a broken photo is left out");

    let outcome = session.outcome(None, 2).unwrap();
    let report: Report = serde_json::from_str(&outcome.report_json).unwrap();
    assert_eq!((report.overall.images, report.overall.anomalous), (8, 4));
    assert_eq!(report.categories.keys().collect::<Vec<_>>(), ["structural"]);
    // The CSV's scores give the JSON's AUROC.
    let rows = common::scores_csv_rows(&outcome.scores_csv);
    assert_eq!(rows.len(), 8);
    let (labels, scores): (Vec<bool>, Vec<f32>) = rows.into_iter().unzip();
    assert_eq!(auroc(&scores, &labels), report.overall.image_AUROC);
    assert!(report.overall.image_AUROC.unwrap() > 0.75, "{:?}", report.overall.image_AUROC);
    // Worst cases: the 2 highest good, then the 2 lowest cracked, each with a heatmap PNG.
    let kinds: Vec<bool> = outcome.gallery.iter().map(|c| c.anomalous).collect();
    assert_eq!(kinds, [false, false, true, true]);
    assert!(outcome.gallery[0].score >= outcome.gallery[1].score && outcome.gallery[2].score <= outcome.gallery[3].score);
    for case in &outcome.gallery {
        let heatmap = image::load_from_memory(&case.heatmap_png).unwrap();
        assert_eq!((heatmap.width(), heatmap.height()), (224, 224), "{}", case.path);
    }
    assert_eq!(outcome.curves.image_roc[0].label, "overall");
    assert!(outcome.curves.pixel_pro.is_none(), "no masks, no PRO curve");
}
