//! Product identification on real photos: three products trained from 20 good photos
//! each (ELPV mono cells, ELPV poly cells, the MVTec 3D tire), then held-out good and
//! damaged photos of each are told apart, and unrelated photos are unknown products.

mod common;

use std::path::PathBuf;

use damagelens::engine::identify::{identify, Gallery, GlobalEmbedding};
use damagelens::engine::inspector::{Inspector, Trainer};
use damagelens::engine::profile::Profile;
use damagelens::engine::settings::TrainSettings;

/// Research data kept outside the repository (CI has it beside the checkout).
fn tire_dir() -> Option<PathBuf> {
    let dir = common::root().join("../shared/data/mvtec3d-tire");
    dir.join("train/good").is_dir().then_some(dir)
}

fn files_in(dir: PathBuf) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path().display().to_string()).collect();
    files.sort();
    files
}

/// A product: its name, good photos to train on, and held-out photos (path, damaged).
struct Product {
    name: &'static str,
    train: Vec<String>,
    held_out: Vec<(String, bool)>,
}

fn elpv_product(name: &'static str, kind: &str) -> Product {
    let good = common::elpv("0.0", kind);
    let cracked = common::elpv("1.0", kind);
    let held_out = good[100..115].iter().map(|f| (f.clone(), false)).chain(cracked[..15].iter().map(|f| (f.clone(), true))).collect();
    Product { name, train: good[..20].to_vec(), held_out }
}

fn tire_product(dir: PathBuf) -> Product {
    let train = files_in(dir.join("train/good")).into_iter().step_by(10).take(20).collect();
    let mut held_out = Vec::new();
    for (defect, count) in [("good", 15), ("combined", 4), ("contamination", 4), ("cut", 4), ("hole", 4)] {
        held_out.extend(files_in(dir.join("test").join(defect)).into_iter().take(count).map(|f| (f, defect != "good")));
    }
    Product { name: "tire", train, held_out }
}

fn embedding(inspector: &Inspector, file: &str) -> GlobalEmbedding {
    let (maps, _) = inspector.feature_maps(file, &common::read(file), false).unwrap();
    GlobalEmbedding::from_maps(&maps).unwrap()
}

#[test]
fn identifies_held_out_good_and_damaged_photos_and_refuses_unknown_things() {
    let (manifest, onnx) = common::backbone();
    let inspector = Inspector::new(manifest, &onnx).unwrap();
    let mut products = vec![elpv_product("mono cell", "mono"), elpv_product("poly cell", "poly")];
    match tire_dir() {
        Some(dir) => products.push(tire_product(dir)),
        None => eprintln!("SKIPPED the tire: ../shared/data/mvtec3d-tire is not there (research data outside the repository)"),
    }
    let profiles: Vec<Profile> = products
        .iter()
        .map(|p| {
            let mut trainer = Trainer::new(&inspector, &TrainSettings::padim()).unwrap();
            for file in &p.train {
                trainer.add(file, &common::read(file)).unwrap();
            }
            trainer.finish(p.name).unwrap()
        })
        .collect();
    // The gallery survives the profile file.
    let reopened: Vec<Profile> =
        profiles.iter().map(|p| Profile::from_bytes(p.name.as_str(), &p.to_bytes().unwrap(), None).unwrap()).collect();
    assert_eq!(reopened, profiles);
    let galleries: Vec<Option<&Gallery>> = reopened.iter().map(|p| p.gallery.as_ref()).collect();
    for (p, g) in products.iter().zip(&galleries) {
        let g = g.expect("training keeps a gallery");
        eprintln!("{}: gallery of {} photos, bound {:.3}", p.name, g.len(), g.bound);
    }

    let (mut right, mut total, mut right_damaged, mut damaged) = (0, 0, 0, 0);
    // The farthest a held-out photo of each kind lay from its own gallery, over its bound.
    let (mut farthest_good, mut farthest_damaged) = (0.0f32, 0.0f32);
    for (truth, product) in products.iter().enumerate() {
        for (file, is_damaged) in &product.held_out {
            let id = identify(&galleries, &embedding(&inspector, file));
            let correct = id.best.is_some_and(|b| b.index == truth);
            let own = galleries[truth].unwrap();
            let relative = own.distance(&embedding(&inspector, file)) / own.bound;
            let farthest = if *is_damaged { &mut farthest_damaged } else { &mut farthest_good };
            *farthest = farthest.max(relative);
            if !correct {
                eprintln!("MISSED {file} ({}, damaged {is_damaged}): {id:?}", product.name);
            }
            total += 1;
            right += usize::from(correct);
            damaged += usize::from(*is_damaged);
            right_damaged += usize::from(correct && *is_damaged);
        }
    }
    let accuracy = right as f32 / total as f32;
    eprintln!("top-1 accuracy {right}/{total} = {accuracy:.3} (damaged photos: {right_damaged}/{damaged})");
    eprintln!("farthest from their own gallery, over its bound: good {farthest_good:.2}, damaged {farthest_damaged:.2}");
    assert!(accuracy >= 0.95, "top-1 accuracy {accuracy}");

    for file in ["tests/data/skimage/coffee.png", "tests/data/skimage/chelsea.png"] {
        let id = identify(&galleries, &embedding(&inspector, file));
        eprintln!("{file}: {id:?}");
        assert_eq!(id.best, None, "{file} is none of the products");
        assert!(id.runner_up.is_some_and(|r| r.relative > 1.0));
    }

    // The same through the CLI: a folder of profiles, one of them without a gallery.
    let dir = std::env::temp_dir().join(format!("damagelens-identify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, p) in reopened.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.dlprofile")), p.to_bytes().unwrap()).unwrap();
    }
    let old = Profile { name: "old product".into(), gallery: None, ..reopened[0].clone() };
    std::fs::write(dir.join("old.dlprofile"), old.to_bytes().unwrap()).unwrap();
    let broken = dir.join("broken.png");
    std::fs::write(&broken, b"not a photo").unwrap();
    let (mono, poly) = (&products[0].held_out[0].0, &products[1].held_out[20].0);
    let out = common::damagelens(&[
        "identify",
        "--profiles",
        dir.to_str().unwrap(),
        mono,
        broken.to_str().unwrap(),
        poly,
        "tests/data/skimage/coffee.png",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success());
    assert!(stderr.contains("old product") && stderr.contains("no identification gallery"), "{stderr}");
    assert!(stderr.contains("broken.png"), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["path"], mono.as_str());
    assert_eq!(lines[0]["product"], "mono cell");
    assert_eq!(lines[1]["product"], "poly cell");
    assert!(lines[2]["product"].is_null());
    assert!(lines.iter().all(|l| l["distance"].as_f64().is_some() && (0.0..=1.0).contains(&l["confidence"].as_f64().unwrap())));
}
