//! A product that keeps learning: good photos added to a trained product (Mark as good)
//! are learnt from the kept learning state, without running the backbone on the photos
//! already learnt, and give exactly the model that training on all of them gives.

mod common;

use damagelens::engine::damage_head::DamageHead;
use damagelens::engine::inspector::{Inspector, Trainer};
use damagelens::engine::learning::Learning;
use damagelens::engine::profile::{LearntHead, Profile};
use damagelens::engine::settings::TrainSettings;
use damagelens::engine::EngineError;

fn train(inspector: &Inspector, settings: &TrainSettings, files: &[String]) -> (Profile, Learning) {
    let mut trainer = Trainer::new(inspector, settings).unwrap();
    for file in files {
        trainer.add(file, &common::read(file)).unwrap();
    }
    trainer.finish_learning("solar cell").unwrap()
}

/// The kept state, through its file (as the app stores it), resumed with more photos.
fn learn_more(inspector: &Inspector, profile: &Profile, learning: &Learning, files: &[String]) -> Result<Profile, EngineError> {
    let kept = Learning::from_bytes("solar cell.learning", &learning.to_bytes().unwrap())?;
    assert_eq!(&kept, learning, "the file gives back the state exactly");
    let profile = Profile::from_bytes("solar cell.dlprofile", &profile.to_bytes().unwrap(), None).unwrap();
    let mut trainer = Trainer::resume(inspector, &profile, kept)?;
    for file in files {
        trainer.add(file, &common::read(file)).unwrap();
    }
    trainer.finish("solar cell")
}

#[test]
fn adding_photos_to_a_trained_product_equals_training_on_all_of_them() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    let patchcore_by_hand = TrainSettings { augment: 1, ..TrainSettings::patchcore() };
    // PaDiM grown from 12 to 16 photos (one more held out on the way); PatchCore with
    // hand-held copies grown from 6 photos (too few to hold any out: threshold from
    // copies, PaDiM-like prior) to 12 (held-out photos from then on).
    for (name, settings, first, more) in [("PaDiM", TrainSettings::padim(), 12, 4), ("PatchCore by hand", patchcore_by_hand, 6, 6)] {
        let all = &good[..first + more];
        let (union, _) = train(&inspector, &settings, all);
        let (profile, learning) = train(&inspector, &settings, &all[..first]);
        assert_eq!(learning.seen, first);
        let grown = learn_more(&inspector, &profile, &learning, &all[first..]).unwrap();
        assert_eq!(grown.detectors, union.detectors, "{name}: the same model");
        assert_eq!(grown.calibration, union.calibration, "{name}: the same threshold, from the same held-out photos");
        assert_eq!(
            (grown.training_images, &grown.gallery, grown.capture),
            (union.training_images, &union.gallery, union.capture),
            "{name}"
        );
        assert_ne!(grown.detectors, profile.detectors, "{name}: the new photos were learnt");
        let score = |p: &Profile| inspector.inspect(p, &cracked[0], &common::read(&cracked[0])).unwrap().score;
        assert_eq!(score(&grown), score(&union), "{name}: the same score, exactly");
    }
}

#[test]
fn a_learning_state_serves_only_the_model_it_made() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let good = common::elpv_mono("0.0");
    let (profile, learning) = train(&inspector, &TrainSettings::padim(), &good[..10]);
    // Another version of the product (another photo learnt): its model differs, so the
    // state of the first version is refused instead of giving a model of neither.
    let (other, _) = train(&inspector, &TrainSettings::padim(), &good[1..11]);
    let refused = learn_more(&inspector, &other, &learning, &good[11..12]).unwrap_err();
    assert!(matches!(refused, EngineError::Learning { .. }), "{refused}");
    assert!(refused.to_string().contains("another version"), "{refused}");
    // A calibration changes the threshold (and may bring a damage head), not the model:
    // the state still serves, and the head stays.
    let mut calibrated = profile.clone();
    calibrated.calibration.threshold *= 1.5;
    let dims = profile.detectors[0].embedder.out_dims();
    let head = DamageHead { dims, mean: vec![0.0; dims], scale: vec![1.0; dims], weights: vec![0.01; dims], bias: -1.0 };
    calibrated.damage_head = Some(LearntHead { head, weight: 0.5, photos: 3 });
    let grown = learn_more(&inspector, &calibrated, &learning, &good[11..12]).unwrap();
    assert_eq!(grown.damage_head, calibrated.damage_head);
    // A state of PatchCore for a PaDiM profile is refused too.
    let (_, patchcore) = train(&inspector, &TrainSettings::patchcore(), &good[..10]);
    assert!(learn_more(&inspector, &profile, &patchcore, &[]).is_err());
}

/// The same from the command line: `train --keep-learning`, then `learn` with more
/// photos, writes the very file that training on all of them writes.
#[test]
fn the_cli_learns_more_photos_into_a_kept_profile() {
    let good = common::elpv_mono("0.0");
    let dir = std::env::temp_dir().join(format!("damagelens-learn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let run = |args: Vec<String>| {
        let out = common::damagelens(&args.iter().map(String::as_str).collect::<Vec<_>>());
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let command = |words: &[&str], photos: &[String]| [words.iter().map(|w| w.to_string()).collect(), photos.to_vec()].concat();
    let (all, first, grown) = (path("all.dlprofile"), path("first.dlprofile"), path("grown.dlprofile"));
    assert!(run(command(&["train", "--name", "cells", "--out", &all], &good[..12])).0);
    assert!(run(command(&["train", "--name", "cells", "--keep-learning", "--out", &first], &good[..10])).0);
    assert!(dir.join("first.dllearning").exists());
    let (ok, said) = run(command(&["learn", "--profile", &first, "--out", &grown], &good[10..12]));
    assert!(ok && said.contains("learnt 2 more good images without relearning the 10 others"), "{said}");
    assert!(std::fs::read(&grown).unwrap() == std::fs::read(&all).unwrap(), "the same profile file, byte for byte");
    assert!(dir.join("grown.dllearning").exists(), "and it goes on learning");
    // A profile trained without keeping its state cannot learn more: the error says why and what to do.
    let (ok, said) = run(command(&["learn", "--profile", &all, "--out", &path("x.dlprofile")], &good[12..13]));
    assert!(!ok && said.contains("all.dllearning") && said.contains("--keep-learning"), "{said}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `train --damaged` learns a damage head beside the anomaly model: `inspect` then says
/// how sure it is of each photo, with the same score and verdict as without it.
#[test]
fn the_cli_trains_a_damage_head_from_damaged_photos() {
    let (good, cracked) = (common::elpv_mono("0.0"), common::elpv_mono("1.0"));
    let dir = std::env::temp_dir().join(format!("damagelens-head-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let (plain, headed) = (path("plain.dlprofile"), path("headed.dlprofile"));
    let run = |args: Vec<String>| {
        let out = common::damagelens(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let words = |w: &[&str], files: &[String]| [w.iter().map(|s| s.to_string()).collect(), files.to_vec()].concat();
    run(words(&["train", "--name", "cells", "--out", &plain], &good[..20]));
    let mut with_head = words(&["train", "--name", "cells", "--out", &headed], &good[..20]);
    with_head.push("--damaged".into());
    with_head.extend(cracked[..6].iter().cloned());
    run(with_head);
    let profile = damagelens::engine::profile::Profile::from_bytes("headed", &std::fs::read(&headed).unwrap(), None).unwrap();
    assert_eq!(profile.damage_head.as_ref().map(|h| h.photos), Some(6));
    let unseen: Vec<String> = cracked[6..10].iter().chain(&good[40..44]).cloned().collect();
    let judged = |p: &str| run(words(&["inspect", "--profile", p], &unseen));
    let (without, with) = (judged(&plain), judged(&headed));
    for (a, b) in without.iter().zip(&with) {
        assert_eq!((&a["score"], &a["verdict"]), (&b["score"], &b["verdict"]), "the verdict stays the anomaly model's");
        assert!(a["damage"].is_null() && b["damage"].is_f64());
    }
    let sure: Vec<f32> = with.iter().map(|r| r["damage"].as_f64().unwrap() as f32).collect();
    let ranking = damagelens::engine::chooser::pairwise_auroc(&sure[..4], &sure[4..]).unwrap();
    assert!(ranking >= 0.75, "the head tells unseen cracked cells from good ones: {sure:?}");
    std::fs::remove_dir_all(&dir).ok();
}
