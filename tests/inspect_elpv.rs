//! One real inspection, natively: train on good ELPV mono cells, inspect cracked and good ones.

mod common;

use damagelens::engine::inspector::{Inspector, TrainSettings, Trainer};

#[test]
fn cracked_cells_score_above_the_threshold_and_unseen_good_cells_below() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    let mut trainer = Trainer::new(&inspector, &TrainSettings::padim()).unwrap();
    for file in &good[..40] {
        trainer.add(file, &common::read(file)).unwrap();
    }
    let profile = trainer.finish("solar cell").unwrap();
    let t = profile.calibration.threshold;
    let score = |f: &String| inspector.inspect(&profile, f, &common::read(f)).unwrap();
    let unseen_good: Vec<f32> = good[40..60].iter().map(|f| score(f).score).collect();
    let damaged: Vec<f32> = cracked[..20].iter().map(|f| score(f).score).collect();
    eprintln!("threshold {t}\ngood {unseen_good:?}\ncracked {damaged:?}");
    let false_alarms = unseen_good.iter().filter(|s| **s >= t).count();
    let caught = damaged.iter().filter(|s| **s >= t).count();
    eprintln!("false alarms {false_alarms}/20, caught {caught}/20");
    // Ranking quality, whatever the threshold: the share of (good, cracked) pairs ordered right.
    let pairs = unseen_good.iter().flat_map(|g| damaged.iter().map(move |d| (g, d)));
    let auroc = pairs.map(|(g, d)| if d > g { 1.0 } else if d == g { 0.5 } else { 0.0 }).sum::<f32>() / 400.0;
    eprintln!("image AUROC {auroc}");
    assert!(auroc >= 0.95, "image AUROC {auroc}");
    assert!(false_alarms <= 1, "{false_alarms} of 20 good cells flagged");
    assert!(caught >= 15, "only {caught} of 20 cracked cells caught");
}
