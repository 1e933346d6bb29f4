//! `damagelens eval` end to end on an MVTec-layout folder built here: good ELPV cells,
//! and the same kind of cells with cracks painted at known places, so the masks are exact.

mod common;

use std::path::{Path, PathBuf};

use damagelens::eval::metrics::auroc;
use image::{GrayImage, Luma};

/// Paints a dark 3 px line from (x0, y0) to (x1, y1) into `img` and `mask`.
fn paint_crack(img: &mut image::RgbImage, mask: &mut GrayImage, (x0, y0): (f32, f32), (x1, y1): (f32, f32)) {
    let steps = ((x1 - x0).hypot(y1 - y0) * 2.0) as usize;
    for s in 0..=steps {
        let t = s as f32 / steps as f32;
        let (cx, cy) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (x, y) = ((cx as i32 + dx) as u32, (cy as i32 + dy) as u32);
                if x < img.width() && y < img.height() {
                    img.put_pixel(x, y, image::Rgb([20, 20, 20]));
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
}

fn build_dataset(dir: &Path) {
    let good = common::elpv_mono("0.0");
    let write = |rel: &str, bytes: &[u8]| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    for (i, f) in good[..20].iter().enumerate() {
        write(&format!("train/good/{i:03}.png"), &common::read(f));
    }
    for (i, f) in good[20..26].iter().enumerate() {
        write(&format!("test/good/{i:03}.png"), &common::read(f));
    }
    for (i, f) in good[26..32].iter().enumerate() {
        let mut img = image::load_from_memory(&common::read(f)).unwrap().to_rgb8();
        let mut mask = GrayImage::new(img.width(), img.height());
        let o = 30.0 * i as f32;
        paint_crack(&mut img, &mut mask, (60.0 + o / 2.0, 70.0), (150.0 + o / 2.0, 200.0));
        std::fs::create_dir_all(dir.join("test/crack")).unwrap();
        std::fs::create_dir_all(dir.join("ground_truth/crack")).unwrap();
        img.save(dir.join(format!("test/crack/{i:03}.png"))).unwrap();
        if i == 4 {
            continue; // a missing mask: reported, image still evaluated
        }
        let mask = if i == 5 { image::imageops::resize(&mask, 10, 10, image::imageops::FilterType::Nearest) } else { mask };
        mask.save(dir.join(format!("ground_truth/crack/{i:03}_mask.png"))).unwrap();
    }
}

#[test]
fn eval_prints_the_twofold_report_and_its_exports_agree() {
    let dir: PathBuf = std::env::temp_dir().join(format!("damagelens-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    build_dataset(&dir);
    let (json, csv) = (dir.join("report.json"), dir.join("scores.csv"));
    let out = common::damagelens(&[
        "eval",
        "--dataset",
        dir.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--scores",
        csv.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("structural") && stdout.contains("overall"), "{stdout}");
    // The missing and the wrongly sized mask are named; their images still count.
    assert!(stderr.contains("test/crack/004.png") && stderr.contains("no mask"), "{stderr}");
    assert!(stderr.contains("ground_truth/crack/005_mask.png") && stderr.contains("mask is 10x10"), "{stderr}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = common::scores_csv_rows(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 12);
    let labels: Vec<bool> = rows.iter().map(|r| r.0).collect();
    let scores: Vec<f32> = rows.iter().map(|r| r.1).collect();
    let from_csv = auroc(&scores, &labels).unwrap();
    assert_eq!(report["image_AUROC"].as_f64().unwrap(), from_csv);
    assert_eq!(report["categories"]["structural"]["images"], 12);
    // Painted cracks are found where they are.
    assert!(report["pixel_AUROC"].as_f64().unwrap() > 0.9, "{report}");
    assert!(report["pixel_AUPRO"].as_f64().unwrap() > 0.6, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// MVTec AD has no validation split: the estimators that read good photos' scores take
/// the good photos training held out, as the app's Calibrate panel does.
#[test]
fn good_score_estimators_work_without_a_validation_split() {
    let dir: PathBuf = std::env::temp_dir().join(format!("damagelens-sigma-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    build_dataset(&dir);
    assert!(!dir.join("validation").exists());
    for method in ["sigma", "percentile", "fp-budget", "youden"] {
        let json = dir.join(format!("{method}.json"));
        let out = common::damagelens(&[
            "eval",
            "--dataset",
            dir.to_str().unwrap(),
            "--threshold-method",
            method,
            "--json",
            json.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{method}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(report["threshold"].as_f64().unwrap().is_finite(), "{method}: {report}");
        // Two damaged photos with masks choose the threshold; the other ten are judged.
        assert_eq!(report["images"], 10, "{method}: {report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_chooses_the_threshold_from_masks_and_inspect_uses_it() {
    let dir: PathBuf = std::env::temp_dir().join(format!("damagelens-cal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    build_dataset(&dir);
    let p = |rel: &str| dir.join(rel).to_str().unwrap().to_string();
    let train = common::damagelens(&["train", &p("train/good"), "--name", "cells", "--out", &p("cells.dlprofile")]);
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let cal = common::damagelens(&[
        "calibrate",
        "--profile",
        &p("cells.dlprofile"),
        "--good",
        &p("test/good"),
        "--damaged",
        &p("test/crack"),
        "--masks",
        &p("ground_truth/crack"),
        "--method",
        "max-iou",
        "--out",
        &p("calibrated.dlprofile"),
    ]);
    let stderr = String::from_utf8_lossy(&cal.stderr);
    assert!(cal.status.success(), "{stderr}");
    assert!(stderr.contains("Maximum IoU") && stderr.contains("would be flagged"), "{stderr}");
    let out = common::damagelens(&["inspect", "--profile", &p("calibrated.dlprofile"), &p("test/crack/000.png"), &p("test/good/000.png")]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["verdict"], "damaged", "{lines:?}");
    assert_eq!(lines[1]["verdict"], "ok", "{lines:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_on_a_folder_without_good_training_images_says_what_to_do() {
    let dir = std::env::temp_dir().join(format!("damagelens-empty-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("train/good")).unwrap();
    std::fs::create_dir_all(dir.join("test/good")).unwrap();
    std::fs::write(dir.join("test/good/000.png"), common::read("tests/data/skimage/brick.png")).unwrap();
    let out = common::damagelens(&["eval", "--dataset", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("train/good") && stderr.contains("no images"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
