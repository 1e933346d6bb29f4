//! Hostile and unusual files in a batch: `damagelens train` and `inspect` name each bad
//! file on stderr with what to do, and still process the good ones.

mod common;

use std::path::{Path, PathBuf};

use image::{ImageBuffer, ImageFormat, LumaA, Rgb, RgbImage};

/// A fresh folder in the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("damagelens-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut buf), format).unwrap();
    buf
}

/// A 1x1 PNG whose header claims 30000x30000 pixels.
fn png_claiming_30000() -> Vec<u8> {
    let mut bytes = encode(&RgbImage::new(1, 1).into(), ImageFormat::Png);
    bytes[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]); // the chunk's checksum, so the crafted header is valid
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Writes the bad files into `dir`; returns each file name with what its message must say.
fn write_bad_files(dir: &TempDir, sub: &str, good_png: &[u8]) -> Vec<(String, &'static str)> {
    let elpv_jpeg = encode(&image::load_from_memory(good_png).unwrap(), ImageFormat::Jpeg);
    let heic: &[u8] = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\x08meta";
    let svg: &[u8] = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    let files: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("empty.png", vec![], "the file is empty"),
        ("notes.jpg", b"shopping list: milk, eggs\n".to_vec(), "not a PNG or JPEG image"),
        ("cut.png", good_png[..good_png.len() / 2].to_vec(), "damaged or incomplete"),
        ("cut.jpg", elpv_jpeg[..elpv_jpeg.len() * 2 / 3].to_vec(), "damaged or incomplete"),
        ("anim.gif", common::read("tests/fixtures/images/animated.gif"), "GIF images are not supported"),
        ("logo.svg", svg.to_vec(), "vector images (SVG) are not supported"),
        ("IMG_0001.HEIC", heic.to_vec(), "HEIC photos are not supported"),
        ("tiny.avif", common::read("tests/fixtures/images/tiny.avif"), "AVIF images are not supported"),
        ("giant.png", png_claiming_30000(), "too large"),
    ];
    let mut expected: Vec<(String, &'static str)> =
        files.into_iter().map(|(name, bytes, says)| (dir.write(&format!("{sub}/{name}"), &bytes).display().to_string(), says)).collect();
    // 300 MB without using the disk: a sparse file, refused from its size before reading.
    let huge = dir.path(&format!("{sub}/huge.jpg"));
    std::fs::File::create(&huge).unwrap().set_len(300 << 20).unwrap();
    expected.push((huge.display().to_string(), "300 MB, more than the 64 MB limit"));
    expected
}

/// Each bad file has a stderr line naming it and saying why.
fn assert_each_named(stderr: &str, expected: &[(String, &str)]) {
    for (file, says) in expected {
        assert!(stderr.lines().any(|l| l.contains(file.as_str()) && l.contains(says)), "no line names {file} with {says:?}:\n{stderr}");
    }
}

#[test]
fn a_batch_with_hostile_files_reports_each_and_processes_the_rest() {
    let dir = TempDir::new("hostile");
    let good = common::elpv_mono("0.0");
    let good_png = common::read(&good[0]);

    // Training: 12 good cells and the bad files.
    for (i, f) in good[..12].iter().enumerate() {
        dir.write(&format!("train/{i:03}.png"), &common::read(f));
    }
    let bad_train = write_bad_files(&dir, "train", &good_png);
    let profile = dir.path("cells.dlprofile").display().to_string();
    let train_dir = dir.path("train").display().to_string();
    let out = common::damagelens(&["train", &train_dir, "--name", "cells", "--out", &profile]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_each_named(&stderr, &bad_train);
    assert!(stderr.contains(&format!("{} of {} files skipped", bad_train.len(), 12 + bad_train.len())), "{stderr}");

    // Inspection: unusual but readable images are scored, the bad files reported.
    let ok: Vec<(&str, Vec<u8>)> = vec![
        ("good1.png", common::read(&good[20])),
        ("good2.png", common::read(&good[21])),
        ("cmyk.jpg", common::read("tests/fixtures/images/cmyk.jpg")),
        ("orient6.jpg", common::read("tests/fixtures/images/orient6.jpg")),
        ("dot.png", encode(&RgbImage::from_pixel(1, 1, Rgb([90, 90, 90])).into(), ImageFormat::Png)),
        ("grey16.png", encode(&image::load_from_memory(&good_png).unwrap().into_luma16().into(), ImageFormat::Png)),
        ("la.png", encode(&ImageBuffer::from_pixel(8, 8, LumaA([120u8, 200])).into(), ImageFormat::Png)),
        ("rgb16.png", encode(&ImageBuffer::from_pixel(8, 8, Rgb([30_000u16, 40_000, 50_000])).into(), ImageFormat::Png)),
    ];
    let ok_paths: Vec<String> = ok.iter().map(|(name, bytes)| dir.write(&format!("inspect/{name}"), bytes).display().to_string()).collect();
    let bad_inspect = write_bad_files(&dir, "inspect", &good_png);
    let out = common::damagelens(&["inspect", "--profile", &profile, &dir.path("inspect").display().to_string()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status.code());
    assert_each_named(&stderr, &bad_inspect);
    let scored: Vec<String> =
        stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].as_str().unwrap().to_string()).collect();
    let mut want = ok_paths.clone();
    want.sort();
    assert_eq!(scored, want, "{stderr}");
    assert!(
        stderr.contains(&format!("{} of {} files could not be inspected", bad_inspect.len(), bad_inspect.len() + ok.len())),
        "{stderr}"
    );

    // Nothing readable at all: a failure, still naming each file.
    for (name, _) in &ok {
        std::fs::remove_file(dir.path(&format!("inspect/{name}"))).unwrap();
    }
    let out = common::damagelens(&["inspect", "--profile", &profile, &dir.path("inspect").display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no image could be inspected"), "{stderr}");
    assert_each_named(&stderr, &bad_inspect);
}

#[test]
fn a_huge_file_is_refused_from_its_size_without_reading_it() {
    let dir = TempDir::new("sparse");
    let path = dir.path("huge.jpg");
    std::fs::File::create(&path).unwrap().set_len(300 << 20).unwrap();
    // "300 MB" comes from the size on disk: the capped read alone would stop at 64 MB.
    let message = damagelens::cli::read_bounded(&path).unwrap_err();
    assert!(message.contains(&path.display().to_string()) && message.contains("300 MB") && message.contains("64 MB limit"), "{message}");
}

#[test]
fn a_missing_file_says_so() {
    let message = damagelens::cli::read_bounded(Path::new("no/such/photo.jpg")).unwrap_err();
    assert!(message.contains("no/such/photo.jpg") && message.contains("no such file"), "{message}");
}
