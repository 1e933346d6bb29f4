//! One real inspection, natively: train on good ELPV mono cells, inspect cracked and good ones.

mod common;

use damagelens::engine::inspector::{Inspector, Trainer};
use damagelens::engine::settings::{Method, TrainSettings};

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
    let auroc = damagelens::engine::chooser::pairwise_auroc(&damaged, &unseen_good).unwrap();
    eprintln!("image AUROC {auroc}");
    assert!(auroc >= 0.95, "image AUROC {auroc}");
    assert!(false_alarms <= 1, "{false_alarms} of 20 good cells flagged");
    assert!(caught >= 15, "only {caught} of 20 cracked cells caught");
}

/// The ensemble with brightness evened, end to end on real cells: both detectors are
/// trained, their maps are put on one scale, and the file gives back the same scores.
#[test]
fn the_ensemble_ranks_cracked_cells_above_good_ones_and_survives_its_file() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest.clone(), &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    let mut settings = TrainSettings::ensemble();
    settings.even_brightness = true;
    let mut trainer = Trainer::new(&inspector, &settings).unwrap();
    for file in &good[..20] {
        trainer.add(file, &common::read(file)).unwrap();
    }
    let profile = trainer.finish("solar cell").unwrap();
    assert_eq!(profile.method_name(), "PaDiM + PatchCore");
    assert!(profile.even_brightness && profile.detectors.iter().all(|d| d.scale.std > 0.0));
    let score = |p: &damagelens::engine::profile::Profile, f: &String| inspector.inspect(p, f, &common::read(f)).unwrap().score;
    let unseen_good: Vec<f32> = good[40..50].iter().map(|f| score(&profile, f)).collect();
    let damaged: Vec<f32> = cracked[..10].iter().map(|f| score(&profile, f)).collect();
    let right = unseen_good.iter().flat_map(|g| damaged.iter().map(move |d| if d > g { 1.0 } else { 0.0 })).sum::<f32>();
    let auroc = right / 100.0;
    eprintln!("ensemble image AUROC {auroc}: good {unseen_good:?} cracked {damaged:?}");
    assert!(auroc >= 0.9, "image AUROC {auroc}");
    let bytes = profile.to_bytes().unwrap();
    let reread = damagelens::engine::profile::Profile::from_bytes("solar.dlprofile", &bytes, Some(&manifest.onnx_sha256)).unwrap();
    assert_eq!(score(&reread, &cracked[0]), damaged[0]);
}

/// The chooser, end to end on real cells: it weighs every candidate, keeps one that tells
/// made-up damage from the held-out photos best (or as well, for less work), trains it
/// exactly as naming that method would, says why in the profile, and the file keeps it.
/// With fewer than 10 photos the unlearnt hand-held copies are what it judges on.
#[test]
fn the_chooser_keeps_the_best_candidate_trained_as_if_named() {
    use damagelens::engine::chooser::{Candidate, TIE};
    use damagelens::engine::profile::Profile;
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let train = |settings: &TrainSettings, n: usize| {
        let mut trainer = Trainer::new(&inspector, settings).unwrap();
        for file in &good[..n] {
            trainer.add(file, &common::read(file)).unwrap();
        }
        trainer.finish("solar cell").unwrap()
    };
    for (n, good_photos) in [(15, 3), (4, 8)] {
        let chosen = train(&TrainSettings::automatic(), n);
        let report = chosen.method.clone().expect("the profile says why its method was chosen");
        eprintln!("{n} photos: {}", report.why);
        assert_eq!(report.scores.len(), Candidate::ALL.len());
        assert_eq!((report.good, report.damaged), (good_photos, 3 * good_photos));
        let pick = *Candidate::ALL.iter().find(|c| c.name() == report.chosen).unwrap();
        let best = report.scores.iter().map(|(_, s)| *s).fold(f32::NEG_INFINITY, f32::max);
        let own = report.scores.iter().find(|(name, _)| *name == report.chosen).unwrap().1;
        assert!(f64::from(best - own) <= TIE, "{report:?}");
        assert!(report.why.starts_with(&format!("Chosen automatically: {}", pick.name())));
        let named = train(&pick.settings(), n);
        assert_eq!(chosen.detectors, named.detectors, "{}", pick.name());
        assert_eq!((chosen.augment, &chosen.calibration), (named.augment, &named.calibration));
        assert_eq!(named.method, None);
        let reread = Profile::from_bytes("solar.dlprofile", &chosen.to_bytes().unwrap(), None).unwrap();
        assert_eq!(reread.method, Some(report));
    }
}

/// A product of one or three photos: every photo is learnt, the threshold comes from
/// hand-held copies the model never learns (and it says so), and the copies widen the
/// identification gallery. (How well so few photos judge: bench/QUALITY.md, few good photos.)
#[test]
fn a_product_of_one_or_three_photos_trains_on_them_all() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    for (n, settings) in [(1, TrainSettings::padim()), (3, TrainSettings::padim()), (3, TrainSettings::patchcore())] {
        let mut trainer = Trainer::new(&inspector, &settings).unwrap();
        for file in &good[..n] {
            trainer.add(file, &common::read(file)).unwrap();
        }
        let profile = trainer.finish("few").unwrap();
        assert_eq!(profile.training_images, n);
        assert!(
            profile.calibration.method.contains(&format!("{} hand-held copies of the {n} good photos", 2 * n)),
            "{}",
            profile.calibration.method
        );
        assert!(profile.calibration.threshold.is_finite());
        assert_eq!(profile.gallery.as_ref().unwrap().len(), 3 * n);
        // A photo it learnt scores below the threshold its copies set.
        let own = inspector.inspect(&profile, &good[0], &common::read(&good[0])).unwrap();
        assert!(own.score < profile.calibration.threshold, "{} vs {}", own.score, profile.calibration.threshold);
    }
}

/// Hand-held copies: learnt beside each photo (PatchCore's bank grows with them), never
/// held out (the threshold is still chosen on the photos as taken), kept in the file, and
/// retraining like the profile (as "mark as good" does) learns the same copies again.
#[test]
fn hand_held_copies_are_learnt_kept_and_learnt_again_alike() {
    use damagelens::engine::patchcore::PatchCoreModel;
    use damagelens::engine::profile::{AnomalyModel, Profile};
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let train = |settings: &TrainSettings| {
        let mut trainer = Trainer::new(&inspector, settings).unwrap();
        for file in &good[..10] {
            trainer.add(file, &common::read(file)).unwrap();
        }
        trainer.finish("cell").unwrap()
    };
    let bank = |p: &Profile| match &p.detectors[0].model {
        AnomalyModel::PatchCore(PatchCoreModel { bank, dims }) => bank.len() / dims,
        AnomalyModel::Padim(_) => unreachable!("PatchCore was trained"),
    };
    // A coreset of 20%, so both banks lie above PatchCore's smallest bank (MIN_BANK).
    let mut patchcore = TrainSettings::patchcore();
    patchcore.detectors[0].method = Method::PatchCore { coreset_ratio: 0.2 };
    let plain = train(&patchcore);
    let mut settings = patchcore.clone();
    settings.augment = 2;
    let augmented = train(&settings);
    assert_eq!(augmented.augment, 2);
    // The final fit takes all ten photos, with copies of the eight that were not held
    // out: 26 photos' patches instead of 10, so 2.6 times the coreset (20% of them).
    let (b0, b2) = (bank(&plain), bank(&augmented));
    assert!((b0 * 26 / 10).abs_diff(b2) <= 2, "bank {b0} plain, {b2} with two copies");
    // The same photos were held out: as many held-out scores, so the same statistics rule.
    assert_eq!(plain.training_images, augmented.training_images);
    assert_ne!(plain.calibration.threshold, augmented.calibration.threshold);

    // A profile learns its copies again as it was trained (the app's own coreset ratio:
    // profiles do not record theirs).
    let mut settings = TrainSettings::patchcore();
    settings.augment = 2;
    let augmented = train(&settings);
    let reread = Profile::from_bytes("cell.dlprofile", &augmented.to_bytes().unwrap(), None).unwrap();
    assert_eq!(reread.augment, 2);
    let mut again = Trainer::like(&inspector, &reread).unwrap();
    for file in &good[..10] {
        again.add(file, &common::read(file)).unwrap();
    }
    let again = again.finish("cell").unwrap();
    assert_eq!(again.detectors, augmented.detectors);
    assert_eq!(again.calibration.threshold, augmented.calibration.threshold);
}

/// Capture checks on real cells: unseen good cells pass; blurred and darkened copies of
/// them are named as such, and the service answers them CHECK with the reason.
#[test]
fn blurred_and_dark_shots_are_named_instead_of_scored() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let mut trainer = Trainer::new(&inspector, &TrainSettings::padim()).unwrap();
    for file in &good[..20] {
        trainer.add(file, &common::read(file)).unwrap();
    }
    let profile = trainer.finish("cell").unwrap();
    assert!(profile.capture.is_some());
    let png = |img: &image::RgbImage| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    for file in &good[20..40] {
        let bytes = common::read(file);
        assert_eq!(inspector.capture_problem(&profile, file, &bytes).unwrap(), None, "{file}");
        let photo = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let blurred = png(&image::imageops::blur(&photo, 4.0));
        let problem = inspector.capture_problem(&profile, "blurred.png", &blurred).unwrap();
        assert!(problem.is_some_and(|p| p.starts_with("too blurry")), "{file} blurred: {problem:?}");
        let mut dark = photo.clone();
        dark.iter_mut().for_each(|v| *v /= 8);
        let problem = inspector.capture_problem(&profile, "dark.png", &png(&dark)).unwrap();
        assert!(problem.is_some_and(|p| p.starts_with("too dark")), "{file} darkened: {problem:?}");
    }
}
