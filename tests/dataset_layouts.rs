//! `load_dir` on real folders: the MVTec 3D-AD tire data when this machine has it, and a
//! small dataset written to a temporary directory, which always runs.

use std::fs;
use std::path::{Path, PathBuf};

use damagelens::eval::dataset::{load_dir, Category, DatasetError, Layout, Sample};

#[test]
fn mvtec3d_tire_counts_masks_and_categories() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mvtec3d-tire");
    if !dir.is_dir() {
        // The data is not redistributed with the repository, so CI machines lack it.
        eprintln!("skipped: {} is not on this machine", dir.display());
        return;
    }
    let ds = load_dir(&dir, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.layout, Layout::MvtecAd);
    assert!(ds.problems.is_empty(), "{:#?}", ds.problems);
    assert_eq!(ds.train.len(), 210);
    assert_eq!(ds.validation.len(), 29);
    assert!(ds.validation.iter().all(|s| !s.anomalous && s.defect == "good"));
    let count = |defect: &str| ds.test.iter().filter(|s| s.defect == defect).count();
    assert_eq!([count("good"), count("cut"), count("hole"), count("contamination"), count("combined")], [25, 27, 27, 28, 5]);
    assert_eq!(ds.test.len(), 25 + 27 + 27 + 28 + 5);
    for s in ds.test.iter().filter(|s| s.anomalous) {
        let mask = s.mask.as_deref().unwrap_or_else(|| panic!("{} has no mask", s.path));
        let stem = Path::new(&s.path).file_stem().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(mask, format!("ground_truth/{}/{stem}_mask.png", s.defect));
        assert!(dir.join(mask).is_file(), "{mask}");
        let expected = match s.defect.as_str() {
            "cut" | "hole" => Category::Structural,
            "contamination" => Category::Contamination,
            "combined" => Category::Combined,
            other => panic!("unexpected defect folder {other}"),
        };
        assert_eq!(s.category, Some(expected), "{}", s.path);
    }
    assert!(ds.test.iter().filter(|s| !s.anomalous).all(|s| s.mask.is_none() && s.category.is_none()));
    assert!(ds.train.iter().chain(ds.test.iter().map(|s| &s.path)).all(|p| dir.join(p).is_file()));
}

/// A directory under the system temp dir, removed even when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("damagelens-{name}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Nothing is decoded while listing, so a few bytes stand in for an image.
    fn touch(&self, rel: &str) {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"not really a png").unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_dir_lists_a_directory_like_a_folder_upload() {
    let tmp = TempDir::new("layout");
    for rel in [
        "LICENSE.txt",
        ".git/config",
        "train/good/10.png",
        "train/good/2.png",
        "train/good/.DS_Store",
        "train/good/._2.png",
        "test/good/0.png",
        "test/cut/0.png",
        "test/cut/1.png",
        "test/cut/notes.txt",
        "ground_truth/cut/0_mask.png",
    ] {
        tmp.touch(rel);
    }
    fs::write(tmp.0.join("categories.csv"), "path,category,background\ntest/cut/0.png,surface,no\n").unwrap();
    let csv = tmp.0.join("categories.csv");

    let ds = load_dir(&tmp.0, Some(&csv)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.layout, Layout::MvtecAd);
    assert_eq!(ds.train, ["train/good/2.png", "train/good/10.png"]);
    assert_eq!(
        ds.test,
        [
            Sample {
                path: "test/cut/0.png".into(),
                anomalous: true,
                defect: "cut".into(),
                mask: Some("ground_truth/cut/0_mask.png".into()),
                category: Some(Category::Surface),
                background: Some(false),
            },
            Sample {
                path: "test/cut/1.png".into(),
                anomalous: true,
                defect: "cut".into(),
                mask: None,
                category: Some(Category::Structural),
                background: None,
            },
            Sample {
                path: "test/good/0.png".into(),
                anomalous: false,
                defect: "good".into(),
                mask: None,
                category: None,
                background: None,
            },
        ]
    );
    assert_eq!(
        ds.problems,
        [
            "test/cut/notes.txt: not an image (expected .png, .jpg, .jpeg, .bmp, .tif or .tiff); skipped",
            "test/cut/1.png: no mask ground_truth/cut/1_mask.png; evaluated at image level only",
        ]
    );
}

#[test]
fn load_dir_errors_name_the_directory() {
    let tmp = TempDir::new("errors");
    tmp.touch("test/cut/0.png");
    tmp.touch("train/good/readme.md");
    let err = load_dir(&tmp.0, None).unwrap_err();
    let expected = format!("{} has no images: an MVTec AD folder needs photos of good items there", tmp.0.join("train/good").display());
    assert_eq!(err.to_string(), expected);

    let file = tmp.0.join("test/cut/0.png");
    assert!(matches!(load_dir(&file, None), Err(DatasetError::NotAFolder { .. })));
    let missing = tmp.0.join("no-such-folder");
    let err = load_dir(&missing, None).unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
    assert!(err.to_string().contains("no-such-folder"), "{err}");

    tmp.touch("train/good/0.png");
    fs::write(tmp.0.join("bad.csv"), [0xff, 0xfe, b'p', 0]).unwrap();
    let err = load_dir(&tmp.0, Some(&tmp.0.join("bad.csv"))).unwrap_err();
    assert!(matches!(err, DatasetError::CsvNotText { .. }), "{err}");

    let empty = TempDir::new("empty");
    let err = load_dir(&empty.0, None).unwrap_err();
    assert!(matches!(err, DatasetError::NoFiles { .. }), "{err}");
    assert!(err.to_string().starts_with(&empty.0.display().to_string()), "{err}");
}

#[cfg(unix)]
#[test]
fn load_dir_survives_a_link_loop() {
    let tmp = TempDir::new("loop");
    tmp.touch("good/0.png");
    tmp.touch("good/1.png");
    tmp.touch("dent/0.png");
    tmp.touch("extra/x.txt");
    std::os::unix::fs::symlink(tmp.0.join("extra"), tmp.0.join("extra/again")).unwrap();
    let ds = load_dir(&tmp.0, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.layout, Layout::Plain);
    assert_eq!(ds.train, ["good/0.png"]);
    assert!(ds.problems.iter().any(|p| p.contains("nested too deeply")), "{:#?}", ds.problems);
}
