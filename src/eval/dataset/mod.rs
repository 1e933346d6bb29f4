//! Dataset layouts (MVTec AD, BTAD, plain folders) and defect categories.
//!
//! The layout rules work on a list of relative paths with `/` separators, not on a
//! filesystem: a browser folder upload only has `webkitRelativePath`s (minus the top
//! folder), so [`parse`] serves the browser and `load_dir` (native only) merely lists a
//! directory and hands the same kind of list to it. Nothing is decoded here; mask sizes
//! are checked by the evaluator once images are read.
//!
//! Every path in a [`Dataset`] is the path as it was given (for `load_dir`: relative
//! to the directory), so the caller can open it. Anything odd about the files is
//! collected in [`Dataset::problems`], each line naming the file, instead of failing:
//! a dataset with a few missing masks is still worth evaluating. Only a dataset that
//! cannot be evaluated at all (no good training images, no recognisable layout) is an
//! error.
//!
//! One concept per file, each documented there:
//!
//! * `layouts.rs`: the three layouts (MVTec AD, BTAD, plain folders), how the one in a
//!   folder is recognised, and the split rule for plain folders;
//! * `categories.rs`: the four product-agnostic defect categories and the folder-name
//!   table they are derived from;
//! * `categories_csv.rs`: the category CSV that overrides them per image;
//! * `files.rs`: listing a folder (native only) and which files nobody means to include;
//! * `natural_sort.rs`: the order files are listed in (`2.png` before `10.png`).

mod categories;
mod categories_csv;
mod files;
mod layouts;
mod natural_sort;

use std::fmt;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use categories::{default_category, Category, UnknownCategory};

pub use super::masks::IMAGE_EXTENSIONS;

const LAYOUTS_HELP: &str = "  - MVTec AD: train/good/ (photos of good items), test/<defect>/ and test/good/, \
optional ground_truth/<defect>/<name>_mask.png\n  \
- BTAD: train/ok/, test/ok/, test/ko/, optional ground_truth/ko/<name>.png\n  \
- plain folders: good/ (or normal/, ok/) next to one folder per damage type such as damaged/ or scratch/, \
optional masks/<name>.png";

/// One test or validation image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Relative path, as given to [`parse`] (or relative to the `load_dir` directory).
    pub path: String,
    pub anomalous: bool,
    /// Defect folder name; `"good"` for normal samples whatever their folder is called.
    pub defect: String,
    /// Relative path of the ground-truth mask, if there is one.
    pub mask: Option<String>,
    /// `None` for good samples.
    pub category: Option<Category>,
    /// Whether the product stands against a background (`true`) or fills the frame as a
    /// texture (`false`); `None` when unknown (only the category CSV sets it).
    pub background: Option<bool>,
}

impl Sample {
    fn good(path: String) -> Sample {
        Sample { path, anomalous: false, defect: "good".into(), mask: None, category: None, background: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    MvtecAd,
    Btad,
    Plain,
}

impl Layout {
    fn needs_good(self) -> &'static str {
        match self {
            Layout::MvtecAd => "an MVTec AD folder needs photos of good items there",
            Layout::Btad => "a BTAD folder needs photos of good items there",
            Layout::Plain => "the plain folder layout needs photos of good items there",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::MvtecAd => "MVTec AD",
            Layout::Btad => "BTAD",
            Layout::Plain => "plain folder",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub layout: Layout,
    /// Good training images, relative paths in natural order.
    pub train: Vec<String>,
    /// Validation split when the dataset has one (MVTec 3D-AD's `validation/good`).
    pub validation: Vec<Sample>,
    pub test: Vec<Sample>,
    /// Each line names the offending file (or folder) and what is wrong with it.
    pub problems: Vec<String>,
}

/// Why a dataset cannot be evaluated at all.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "{location} holds no files: choose the dataset folder itself (the one with train/ and test/, \
         or good/ next to one folder per damage type)"
    )]
    NoFiles { location: String },
    #[error("{location} does not look like a dataset (it holds {found}). DamageLens reads three layouts:\n{}", LAYOUTS_HELP)]
    Unrecognised { location: String, found: String },
    #[error("{location} holds several datasets ({}): choose one of these folders", .names.join(", "))]
    SeveralDatasets { location: String, names: Vec<String> },
    #[error("{folder} has no images: {}", .layout.needs_good())]
    NoTrainImages { folder: String, layout: Layout },
    #[error("{path} is not a folder: choose the dataset folder (the one with train/ and test/, or good/)")]
    NotAFolder { path: String },
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not UTF-8 text: save the category table as \"CSV UTF-8\"")]
    CsvNotText { path: String },
}

/// Reads a dataset from relative paths (see `layouts.rs` for the layouts)
/// and applies the optional category CSV text.
pub fn parse(paths: &[String], categories_csv: Option<&str>) -> Result<Dataset, DatasetError> {
    layouts::parse_with(paths.iter().map(String::as_str), categories_csv, None, Vec::new())
}

/// Lists `dir` recursively (hidden files skipped, natural order) and reads it like
/// [`parse`]; paths in the result are relative to `dir`.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(dir: &Path, categories_csv: Option<&Path>) -> Result<Dataset, DatasetError> {
    let shown = dir.display().to_string();
    let meta = std::fs::metadata(dir).map_err(|source| DatasetError::Io { path: shown.clone(), source })?;
    if !meta.is_dir() {
        return Err(DatasetError::NotAFolder { path: shown });
    }
    let csv = match categories_csv {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.display().to_string(), source })?;
            let text = String::from_utf8(bytes).map_err(|_| DatasetError::CsvNotText { path: path.display().to_string() })?;
            Some(text)
        }
        None => None,
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    files::walk(dir, "", 0, &mut files, &mut problems).map_err(|source| DatasetError::Io { path: shown, source })?;
    layouts::parse_with(files.iter().map(String::as_str), csv.as_deref(), Some(dir), problems)
}

#[cfg(test)]
mod test_util {
    use super::*;

    pub fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    pub fn sample<'a>(ds: &'a Dataset, path: &str) -> &'a Sample {
        ds.test.iter().chain(&ds.validation).find(|s| s.path == path).unwrap_or_else(|| panic!("no sample {path} in {ds:#?}"))
    }

    pub fn has_problem(ds: &Dataset, needle: &str) -> bool {
        ds.problems.iter().any(|p| p.contains(needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(
            list in proptest::collection::vec("[a-zA-Z0-9_./\\\\ -]{0,30}", 0..20),
            csv in "[a-z0-9_/,;\"\t\r\n. -]{0,200}",
        ) {
            let _ = parse(&list, Some(&csv));
        }
    }
}
