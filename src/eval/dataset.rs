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
//! # Layouts
//!
//! Detected automatically; images are `.png .jpg .jpeg .bmp .tif .tiff` in any case,
//! and folder names are matched case-insensitively.
//!
//! * **MVTec AD**: `train/good/*`, `test/<defect>/*` (`test/good/` holds normal items),
//!   masks `ground_truth/<defect>/<name>_mask.png`, optional `validation/good/*`.
//!   The original MVTec 3D-AD nesting is understood too: `train/good/rgb/000.png`,
//!   `test/cut/rgb/000.png` with its mask `test/cut/gt/000.png`; its `xyz/` point clouds
//!   and `calibration/` are ignored.
//! * **BTAD**: `train/ok/*`, `test/ok/*` (normal), `test/ko/*` (damaged), masks
//!   `ground_truth/ko/<name>.png` or `.bmp` (same name as the image).
//! * **Plain folders**: `good/` (or `normal/`, `ok/`) next to one folder per damage type
//!   (`damaged/`, `scratch/`, ...), images possibly in subfolders, optional masks in
//!   `masks/` (or `mask/`, `ground_truth/`, `gt/`) named `<name>.png` or
//!   `<name>_mask.png`, either directly there or in `masks/<damage folder>/`.
//!
//!   **Split rule**: a plain dataset has no train/test split, and leaving it to every
//!   caller would make CLI and browser results disagree. So the good images, in
//!   natural order (`2.png` before `10.png`), alternate: the 1st, 3rd, 5th, ... go to
//!   `train`, the 2nd, 4th, ... to `test` as normal samples. Alternating rather than
//!   cutting in half keeps both halves spread over a sequence of shots (lighting
//!   drifting during a session, say), and it is deterministic.
//!
//! Mask names follow either convention in either layout (`<name>_mask.*` or `<name>.*`,
//! any image extension), because converted datasets mix them. Good images never get a
//! mask: they are normal everywhere by definition, and MVTec 3D-AD's all-black masks
//! for them carry no information.
//!
//! If the chosen folder holds a single folder (a zip extracted into `tire/tire/`), the
//! layout is looked for inside it, a few levels deep; if it holds several datasets
//! (the whole MVTec AD download), the error asks to choose one.
//!
//! # Defect categories
//!
//! Four product-agnostic categories, so results can be compared across products:
//! *structural* (the item's shape or integrity changed: material missing, broken,
//! deformed, misplaced), *surface* (the surface of an intact item looks different),
//! *contamination* (foreign material on the item), *combined* (several kinds at once).
//! [`default_category`] derives one from the defect folder name; a category CSV can
//! override it per image.
//!
//! | category | folder names (MVTec AD, MVTec 3D-AD, others) |
//! |---|---|
//! | structural | hole, cut, crack, broken, broken_large, broken_small, broken_teeth, missing_cable, missing_wire, bent, bent_wire, bent_lead, cut_lead, cut_inner_insulation, cut_outer_insulation, fold, flip, misplaced, cable_swap, squeeze, squeezed_teeth, split_teeth, poke, poke_insulation, manipulated_front, thread_side, thread_top, fabric_border, fabric_interior, damaged_case, dent, tear, chip, deformed, warp, ... |
//! | surface | scratch, scratch_head, scratch_neck, color, print, faulty_imprint, rough, gray_stroke, thread, pill_type, rust, corrosion, abrasion, scuff, wear, spot, ... |
//! | contamination | contamination, metal_contamination, glue, glue_strip, oil, liquid, stain, dirt, dust, foreign, debris, residue, hair, fiber, grease, ... |
//! | combined | combined, multiple, mixed |
//!
//! Whole names are looked up first (`thread_side`: a damaged screw thread, structural,
//! although a loose `thread` on carpet or grid is surface), then each word of the name
//! (`large_hole` -> structural, singular or plural), and when words disagree the most
//! specific wins: combined, then contamination, then structural, then surface.
//! Names that say nothing about the kind of damage (BTAD's `ko`, `damaged`,
//! `defective`, `bad`, `anomaly`, ...) and unknown names default to **surface**, the
//! mildest claim: it asserts neither a change of shape nor foreign material. Use the
//! CSV when that is wrong.
//!
//! # Category CSV
//!
//! Header `path,category,background` (`background` optional: `true/false`, `yes/no`,
//! `1/0`; columns in any order, extra columns ignored; without a header the columns are
//! taken in that order). `path` is relative to the dataset, like `test/cut/000.png`.
//! `;` or tab separators (spreadsheets in some locales) and `"quoted"` fields are
//! accepted; a field cannot span lines; blank lines and lines starting with `#` are
//! skipped. An empty cell leaves that value unchanged. Rows naming no image of the
//! dataset, unknown categories and unreadable booleans are reported in `problems`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// File extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

/// Folder names meaning "normal items" in every layout.
const NORMAL_FOLDERS: [&str; 3] = ["good", "ok", "normal"];

/// Mask folder names of the plain layout, in lookup order.
const PLAIN_MASK_FOLDERS: [&str; 4] = ["masks", "mask", "ground_truth", "gt"];

/// How many single wrapper folders are looked through to find the dataset.
const MAX_WRAPPERS: usize = 3;

const LAYOUTS_HELP: &str = "  - MVTec AD: train/good/ (photos of good items), test/<defect>/ and test/good/, \
optional ground_truth/<defect>/<name>_mask.png\n  \
- BTAD: train/ok/, test/ok/, test/ko/, optional ground_truth/ko/<name>.png\n  \
- plain folders: good/ (or normal/, ok/) next to one folder per damage type such as damaged/ or scratch/, \
optional masks/<name>.png";

/// Product-agnostic kind of damage; see the module documentation for the name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Structural,
    Surface,
    Contamination,
    Combined,
}

impl Category {
    pub const ALL: [Category; 4] = [Category::Structural, Category::Surface, Category::Contamination, Category::Combined];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Structural => "structural",
            Category::Surface => "surface",
            Category::Contamination => "contamination",
            Category::Combined => "combined",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category name that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown defect category \"{0}\": expected structural, surface, contamination or combined")]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    /// Accepts the lowercase names; case and surrounding spaces are forgiven because the
    /// names come from hand-edited spreadsheets.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Category::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| UnknownCategory(name.to_string()))
    }
}

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

/// Reads a dataset from relative paths (see the module documentation for the layouts)
/// and applies the optional category CSV text.
pub fn parse(paths: &[String], categories_csv: Option<&str>) -> Result<Dataset, DatasetError> {
    parse_with(paths.iter().map(String::as_str), categories_csv, None, Vec::new())
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
    walk(dir, "", 0, &mut files, &mut problems).map_err(|source| DatasetError::Io { path: shown, source })?;
    parse_with(files.iter().map(String::as_str), csv.as_deref(), Some(dir), problems)
}

/// Symbolic links are followed (datasets often live elsewhere); this bounds a cycle.
#[cfg(not(target_arch = "wasm32"))]
const MAX_DEPTH: usize = 32;

#[cfg(not(target_arch = "wasm32"))]
fn walk(dir: &Path, rel: &str, depth: usize, files: &mut Vec<String>, problems: &mut Vec<String>) -> std::io::Result<()> {
    let join = |name: &str| if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
    let mut children = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                problems.push(format!("{}/: cannot list an entry ({err}); skipped", display_rel(rel)));
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            problems.push(format!("{}: the name is not valid UTF-8; skipped", join(&os_name.to_string_lossy())));
            continue;
        };
        if is_ignored_name(name) {
            continue;
        }
        children.push((name.to_string(), entry));
    }
    children.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    for (name, entry) in children {
        let child_rel = join(&name);
        let path = entry.path();
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => match std::fs::metadata(&path) {
                Ok(m) => m.is_dir(),
                Err(err) => {
                    problems.push(format!("{child_rel}: broken link ({err}); skipped"));
                    continue;
                }
            },
            Ok(t) => t.is_dir(),
            Err(err) => {
                problems.push(format!("{child_rel}: cannot read ({err}); skipped"));
                continue;
            }
        };
        if !is_dir {
            files.push(child_rel);
        } else if depth + 1 >= MAX_DEPTH {
            problems.push(format!("{child_rel}/: nested too deeply (a link loop?); skipped"));
        } else if let Err(err) = walk(&path, &child_rel, depth + 1, files, problems) {
            problems.push(format!("{child_rel}/: cannot read ({err}); skipped"));
        }
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn display_rel(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// The category a defect folder name suggests; see the table in the module documentation.
pub fn default_category(defect_folder: &str) -> Category {
    let name = defect_folder.trim().to_lowercase().replace(['-', ' '], "_");
    if let Some(c) = whole_name_category(&name) {
        return c;
    }
    let found: BTreeSet<Category> =
        name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).filter_map(word_category).collect();
    [Category::Combined, Category::Contamination, Category::Structural, Category::Surface]
        .into_iter()
        .find(|c| found.contains(c))
        .unwrap_or(Category::Surface)
}

/// Names whose words would mislead.
fn whole_name_category(name: &str) -> Option<Category> {
    Some(match name {
        "thread_side" | "thread_top" | "fabric_border" | "fabric_interior" | "damaged_case" => Category::Structural,
        "pill_type" => Category::Surface,
        _ => return None,
    })
}

fn word_category(word: &str) -> Option<Category> {
    let singular = [word.strip_suffix("es"), word.strip_suffix('s')];
    std::iter::once(word).chain(singular.into_iter().flatten()).find_map(|w| {
        Some(match w {
            "combined" | "multiple" | "mixed" => Category::Combined,
            "contamination" | "contaminated" | "contaminant" | "glue" | "oil" | "liquid" | "stain" | "stained" | "dirt" | "dirty"
            | "dust" | "dusty" | "foreign" | "debris" | "residue" | "hair" | "fiber" | "fibre" | "particle" | "grease" | "water"
            | "mold" | "mould" => Category::Contamination,
            "hole" | "cut" | "crack" | "cracked" | "broken" | "break" | "missing" | "bent" | "bend" | "fold" | "folded" | "flip"
            | "flipped" | "misplaced" | "misaligned" | "squeeze" | "squeezed" | "split" | "poke" | "manipulated" | "deformed"
            | "deformation" | "dent" | "dented" | "tear" | "torn" | "chip" | "chipped" | "fracture" | "fractured" | "swap" | "swapped"
            | "puncture" | "punctured" | "warp" | "warped" | "bulge" | "gap" | "structural" => Category::Structural,
            "scratch" | "scratched" | "color" | "colour" | "discoloration" | "discolouration" | "print" | "imprint" | "rough"
            | "roughness" | "stroke" | "thread" | "rust" | "rusty" | "corrosion" | "abrasion" | "scuff" | "wear" | "worn" | "mark"
            | "spot" | "burn" | "faded" | "texture" | "surface" => Category::Surface,
            _ => return None,
        })
    })
}

// ---------------------------------------------------------------------------------
// Parsing

/// A file below the dataset root.
struct Entry {
    /// The path as the caller gave it: what samples and problems report.
    full: String,
    /// Components below the dataset root, where the layout rules apply.
    rel: Vec<String>,
}

/// An image found in a class folder.
struct Found {
    full: String,
    split: Split,
    /// Folder names as written, for messages.
    split_name: String,
    class: String,
    stem: String,
    /// MVTec 3D-AD's `<class>/rgb/` form.
    nested: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Split {
    Train,
    Validation,
    Test,
}

/// A mask file, remembered until some image claims it.
struct MaskFile {
    full: String,
    /// Where its image was expected and under what name, for the orphan message.
    image_folder: String,
    image_stem: String,
}

struct Parts {
    train: Vec<String>,
    validation: Vec<Sample>,
    test: Vec<Sample>,
    /// The folder named when `train` is empty, relative to the dataset root.
    train_folder: String,
}

/// Damaged images of one class folder that found no mask, reported together.
struct MissingMasks {
    folder: String,
    total: usize,
    with_mask: usize,
    missing: Vec<(String, String)>,
}

#[derive(Default)]
struct MissingReport {
    groups: Vec<MissingMasks>,
    index: HashMap<String, usize>,
}

impl MissingReport {
    fn record(&mut self, folder: &str, image: &str, expected: Option<String>) {
        let i = *self.index.entry(fold(folder)).or_insert_with(|| {
            self.groups.push(MissingMasks { folder: folder.to_string(), total: 0, with_mask: 0, missing: Vec::new() });
            self.groups.len() - 1
        });
        let group = &mut self.groups[i];
        group.total += 1;
        match expected {
            Some(expected) => group.missing.push((image.to_string(), expected)),
            None => group.with_mask += 1,
        }
    }

    /// One line per folder when a whole folder lacks masks (a dataset shipped without
    /// ground truth would otherwise bury everything else), else one line per image.
    fn report(self, problems: &mut Vec<String>) {
        for group in self.groups {
            if group.with_mask == 0 && group.total >= 2 {
                let example = group.missing.first().map(|(_, e)| e.as_str()).unwrap_or_default();
                problems.push(format!(
                    "{}: none of its {} images has a mask (expected e.g. {example}); evaluated at image level only",
                    group.folder, group.total
                ));
            } else {
                for (image, expected) in group.missing {
                    problems.push(format!("{image}: no mask {expected}; evaluated at image level only"));
                }
            }
        }
    }
}

fn parse_with<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    categories_csv: Option<&str>,
    dir: Option<&Path>,
    mut problems: Vec<String>,
) -> Result<Dataset, DatasetError> {
    let mut files: Vec<String> = paths.into_iter().filter_map(normalize).collect();
    files.sort_by(|a, b| natural_cmp(a, b));
    files.dedup();
    if files.is_empty() {
        return Err(DatasetError::NoFiles { location: place(dir, "") });
    }
    let comps: Vec<Vec<&str>> = files.iter().map(|f| f.split('/').collect()).collect();
    let (prefix, layout) = find_root(&comps, dir)?;
    let root = if prefix.is_empty() { String::new() } else { format!("{}/", prefix.join("/")) };
    let entries: Vec<Entry> = files
        .iter()
        .zip(&comps)
        .filter(|(_, c)| c.len() > prefix.len() && c[..prefix.len()] == prefix[..])
        .map(|(full, c)| Entry { full: full.clone(), rel: c[prefix.len()..].iter().map(|s| s.to_string()).collect() })
        .collect();
    let mut parts = match layout {
        Layout::MvtecAd | Layout::Btad => parse_split_layout(&entries, &root, layout, &mut problems),
        Layout::Plain => parse_plain(&entries, &root, &mut problems),
    };
    if parts.train.is_empty() {
        let folder = place(dir, &format!("{root}{}", parts.train_folder));
        return Err(DatasetError::NoTrainImages { folder, layout });
    }
    parts.train.sort_by(|a, b| natural_cmp(a, b));
    parts.validation.sort_by(|a, b| natural_cmp(&a.path, &b.path));
    parts.test.sort_by(|a, b| natural_cmp(&a.path, &b.path));
    let mut dataset = Dataset { layout, train: parts.train, validation: parts.validation, test: parts.test, problems };
    if let Some(text) = categories_csv {
        apply_csv(text, &root, &mut dataset);
    }
    Ok(dataset)
}

/// Where something is, for error messages: relative for the browser, under the
/// directory for the CLI so the message can be pasted into a shell.
fn place(dir: Option<&Path>, rel: &str) -> String {
    let rel = rel.trim_end_matches('/');
    match (dir, rel.is_empty()) {
        (None, true) => "the selected folder".into(),
        (None, false) => rel.into(),
        (Some(d), true) => d.display().to_string(),
        (Some(d), false) => d.join(rel).display().to_string(),
    }
}

/// Relative path with `/` separators, or `None` for files nobody means to include
/// (hidden files, OS litter) and for paths that would climb out of the dataset.
fn normalize(path: &str) -> Option<String> {
    let unified = path.replace('\\', "/");
    let parts: Vec<&str> = unified.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.is_empty() || parts.iter().any(|c| is_ignored_name(c)) {
        return None;
    }
    Some(parts.join("/"))
}

/// Hidden entries (also `..`), macOS zip litter and Windows thumbnail caches.
fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.eq_ignore_ascii_case("__MACOSX")
        || name.eq_ignore_ascii_case("Thumbs.db")
        || name.eq_ignore_ascii_case("desktop.ini")
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn is_normal_folder(name: &str) -> bool {
    NORMAL_FOLDERS.iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    }
}

fn is_image(name: &str) -> bool {
    split_extension(name).1.is_some_and(|ext| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

fn stem(name: &str) -> &str {
    split_extension(name).0
}

/// A mask's name without the `_mask` suffix: the name of the image it belongs to.
fn image_stem_of_mask(name: &str) -> &str {
    let s = stem(name);
    let cut = s.len().saturating_sub("_mask".len());
    match (s.get(cut..), s.get(..cut)) {
        (Some(suffix), Some(rest)) if suffix.eq_ignore_ascii_case("_mask") && !rest.is_empty() => rest,
        _ => s,
    }
}

fn not_an_image(full: &str) -> String {
    format!("{full}: not an image (expected .png, .jpg, .jpeg, .bmp, .tif or .tiff); skipped")
}

fn find_root(comps: &[Vec<&str>], dir: Option<&Path>) -> Result<(Vec<String>, Layout), DatasetError> {
    let mut prefix: Vec<&str> = Vec::new();
    loop {
        let under: Vec<&[&str]> =
            comps.iter().filter(|c| c.len() > prefix.len() && c.starts_with(&prefix)).map(|c| &c[prefix.len()..]).collect();
        if let Some(layout) = detect(&under) {
            return Ok((prefix.iter().map(|s| s.to_string()).collect(), layout));
        }
        let folders: BTreeSet<&str> = under.iter().filter(|p| p.len() >= 2).map(|p| p[0]).collect();
        let datasets: Vec<&str> = folders
            .iter()
            .copied()
            .filter(|f| {
                let inside: Vec<&[&str]> = under.iter().filter(|p| p.len() >= 2 && p[0] == *f).map(|p| &p[1..]).collect();
                detect(&inside).is_some()
            })
            .collect();
        let location = place(dir, &prefix.join("/"));
        if datasets.len() >= 2 {
            let names = datasets.iter().map(|d| format!("{d}/")).collect();
            return Err(DatasetError::SeveralDatasets { location, names });
        }
        let next = match (datasets.as_slice(), folders.len()) {
            ([only], _) => Some(*only),
            (_, 1) => folders.first().copied(),
            _ => None,
        };
        match next {
            Some(folder) if prefix.len() < MAX_WRAPPERS => prefix.push(folder),
            _ => return Err(DatasetError::Unrecognised { location, found: describe(&under) }),
        }
    }
}

fn detect(under: &[&[&str]]) -> Option<Layout> {
    let has = |a: &str, b: Option<&str>| {
        under.iter().any(|p| match b {
            None => p.len() >= 2 && p[0].eq_ignore_ascii_case(a),
            Some(b) => p.len() >= 3 && p[0].eq_ignore_ascii_case(a) && p[1].eq_ignore_ascii_case(b),
        })
    };
    if has("train", None) || has("test", None) {
        let btad = !has("train", Some("good")) && (has("train", Some("ok")) || has("test", Some("ok")) || has("test", Some("ko")));
        return Some(if btad { Layout::Btad } else { Layout::MvtecAd });
    }
    if under.iter().any(|p| p.len() >= 2 && is_normal_folder(p[0])) {
        return Some(Layout::Plain);
    }
    None
}

/// A short inventory for the "not a dataset" message, so the person sees what was read.
fn describe(under: &[&[&str]]) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    // Folders first: they are what a layout is made of.
    for folders in [true, false] {
        for p in under.iter().filter(|p| (p.len() >= 2) == folders) {
            let name = if folders { format!("{}/", p[0]) } else { p[0].to_string() };
            if seen.insert(name.clone()) {
                names.push(name);
            }
        }
    }
    const SHOWN: usize = 8;
    match names.len() {
        0 => "nothing".into(),
        n if n > SHOWN => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
        _ => names.join(", "),
    }
}

/// MVTec AD (and 3D-AD) and BTAD: the same train/test/ground_truth shape, differing
/// only in folder names and the mask naming they prefer.
fn parse_split_layout(entries: &[Entry], root: &str, layout: Layout, problems: &mut Vec<String>) -> Parts {
    let normal_name = if layout == Layout::Btad { "ok" } else { "good" };
    let mut images: Vec<Found> = Vec::new();
    let mut masks: HashMap<String, MaskFile> = HashMap::new();
    let mut noted_folders = HashSet::new();
    let mut note_folder = |problems: &mut Vec<String>, rel: &[String], why: &str| {
        let folder = format!("{root}{}/", rel.join("/"));
        if noted_folders.insert(folder.clone()) {
            problems.push(format!("{folder}: {why}"));
        }
    };
    for e in entries {
        let lower: Vec<String> = e.rel.iter().map(|s| fold(s)).collect();
        // Loose files next to the splits are licences and readmes.
        if lower.len() < 2 {
            continue;
        }
        let name = &e.rel[e.rel.len() - 1];
        let folder_of_file = &e.rel[..e.rel.len() - 1];
        match lower[0].as_str() {
            "train" | "validation" | "test" => {
                let split = match lower[0].as_str() {
                    "train" => Split::Train,
                    "validation" => Split::Validation,
                    _ => Split::Test,
                };
                if lower.len() == 2 {
                    problems.push(format!("{}: not inside a class folder such as {root}{}/{normal_name}/; skipped", e.full, e.rel[0]));
                    continue;
                }
                let normal = is_normal_folder(&lower[1]);
                if split == Split::Train && !normal {
                    note_folder(problems, &e.rel[..2], "training uses photos of good items only; folder ignored");
                    continue;
                }
                let is_mask = match (lower.len(), lower[2].as_str()) {
                    (3, _) => false,
                    // MVTec 3D-AD point clouds are TIFF files, but not photos.
                    (_, "xyz") => continue,
                    (4, "rgb") => false,
                    (4, "gt") => true,
                    _ => {
                        note_folder(problems, folder_of_file, "unexpected folder; ignored");
                        continue;
                    }
                };
                if is_mask && normal {
                    continue;
                }
                if !is_image(name) {
                    problems.push(not_an_image(&e.full));
                    continue;
                }
                if is_mask {
                    let mask = MaskFile {
                        full: e.full.clone(),
                        image_folder: format!("{root}{}/{}/", e.rel[0], e.rel[1]),
                        image_stem: stem(name).to_string(),
                    };
                    masks.insert(lower.join("/"), mask);
                } else {
                    images.push(Found {
                        full: e.full.clone(),
                        split,
                        split_name: e.rel[0].clone(),
                        class: e.rel[1].clone(),
                        stem: stem(name).to_string(),
                        nested: lower.len() == 4,
                    });
                }
            }
            "ground_truth" => {
                if lower.len() == 2 {
                    problems.push(format!("{}: not inside a defect folder such as {root}ground_truth/<defect>/; skipped", e.full));
                    continue;
                }
                if lower.len() > 3 {
                    note_folder(problems, folder_of_file, "unexpected folder; ignored");
                    continue;
                }
                if is_normal_folder(&lower[1]) {
                    continue;
                }
                if !is_image(name) {
                    problems.push(not_an_image(&e.full));
                    continue;
                }
                let mask = MaskFile {
                    full: e.full.clone(),
                    image_folder: format!("{root}test/{}/", e.rel[1]),
                    image_stem: image_stem_of_mask(name).to_string(),
                };
                masks.insert(lower.join("/"), mask);
            }
            // MVTec 3D-AD camera parameters.
            "calibration" => {}
            _ => note_folder(problems, &e.rel[..1], &format!("not part of the {layout} layout; ignored")),
        }
    }

    let mut parts = Parts { train: Vec::new(), validation: Vec::new(), test: Vec::new(), train_folder: format!("train/{normal_name}") };
    let mut used: HashSet<String> = HashSet::new();
    let mut missing = MissingReport::default();
    for img in images {
        if img.split == Split::Train {
            parts.train.push(img.full);
            continue;
        }
        let sample = if is_normal_folder(&img.class) {
            Sample::good(img.full)
        } else {
            let (candidates, expected) = split_layout_mask_candidates(&img, root, layout);
            let key = candidates.into_iter().find(|k| masks.contains_key(k));
            let mask = key.and_then(|k| {
                let full = masks.get(&k).map(|m| m.full.clone());
                used.insert(k);
                full
            });
            let folder = format!("{root}{}/{}/", img.split_name, img.class);
            missing.record(&folder, &img.full, mask.is_none().then_some(expected));
            Sample {
                path: img.full,
                anomalous: true,
                category: Some(default_category(&img.class)),
                defect: img.class,
                mask,
                background: None,
            }
        };
        match img.split {
            Split::Validation => parts.validation.push(sample),
            _ => parts.test.push(sample),
        }
    }
    missing.report(problems);
    report_orphan_masks(masks, &used, problems);

    let test_folder = format!("{root}test/");
    if parts.test.is_empty() {
        problems.push(format!("{test_folder}: no test images; there is nothing to evaluate"));
    } else if !parts.test.iter().any(|s| s.anomalous) {
        problems.push(format!(
            "{test_folder}: no damaged images (one folder per defect type next to {normal_name}/); \
             only false alarms can be measured"
        ));
    } else if parts.test.iter().all(|s| s.anomalous) {
        problems.push(format!("{test_folder}{normal_name}/: no images; only missed damage can be measured, not false alarms"));
    }
    parts
}

/// Lowercase keys to try, best first, and the name to suggest when none exists.
fn split_layout_mask_candidates(img: &Found, root: &str, layout: Layout) -> (Vec<String>, String) {
    let (split, class, stem) = (fold(&img.split_name), fold(&img.class), fold(&img.stem));
    let nested: Vec<String> = IMAGE_EXTENSIONS.iter().map(|ext| format!("{split}/{class}/gt/{stem}.{ext}")).collect();
    // The flat ground_truth/ folder belongs to the test split.
    let flat: Vec<String> = if img.split == Split::Test {
        let suffixed = IMAGE_EXTENSIONS.iter().map(|ext| format!("ground_truth/{class}/{stem}_mask.{ext}"));
        let same = IMAGE_EXTENSIONS.iter().map(|ext| format!("ground_truth/{class}/{stem}.{ext}"));
        if layout == Layout::Btad {
            same.chain(suffixed).collect()
        } else {
            suffixed.chain(same).collect()
        }
    } else {
        Vec::new()
    };
    let expected = if img.nested || img.split != Split::Test {
        format!("{root}{}/{}/gt/{}.png", img.split_name, img.class, img.stem)
    } else if layout == Layout::Btad {
        format!("{root}ground_truth/{}/{}.png", img.class, img.stem)
    } else {
        format!("{root}ground_truth/{}/{}_mask.png", img.class, img.stem)
    };
    let candidates = if img.nested { nested.into_iter().chain(flat).collect() } else { flat.into_iter().chain(nested).collect() };
    (candidates, expected)
}

fn report_orphan_masks(masks: HashMap<String, MaskFile>, used: &HashSet<String>, problems: &mut Vec<String>) {
    let mut orphans: Vec<MaskFile> = masks.into_iter().filter(|(k, _)| !used.contains(k)).map(|(_, m)| m).collect();
    orphans.sort_by(|a, b| natural_cmp(&a.full, &b.full));
    for m in orphans {
        problems.push(format!("{}: no image named {} in {}; mask ignored", m.full, m.image_stem, m.image_folder));
    }
}

fn parse_plain(entries: &[Entry], root: &str, problems: &mut Vec<String>) -> Parts {
    let mut good: Vec<String> = Vec::new();
    let mut good_folder: Option<String> = None;
    let mut damaged: Vec<Found> = Vec::new();
    let mut masks: HashMap<String, MaskFile> = HashMap::new();
    // Lowercase name -> name as written, in lookup order.
    let mut mask_folders: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for e in entries {
        if e.rel.len() < 2 {
            continue;
        }
        let name = &e.rel[e.rel.len() - 1];
        let top = fold(&e.rel[0]);
        if is_normal_folder(&top) {
            good_folder.get_or_insert_with(|| e.rel[0].clone());
            if is_image(name) {
                good.push(e.full.clone());
            } else {
                problems.push(not_an_image(&e.full));
            }
        } else if let Some(order) = PLAIN_MASK_FOLDERS.iter().position(|m| *m == top) {
            mask_folders.entry(order).or_insert_with(|| (top.clone(), e.rel[0].clone()));
            if !is_image(name) {
                problems.push(not_an_image(&e.full));
                continue;
            }
            let image_folder =
                if e.rel.len() >= 3 { format!("{root}{}/", e.rel[1..e.rel.len() - 1].join("/")) } else { "the damage folders".into() };
            let mask = MaskFile { full: e.full.clone(), image_folder, image_stem: image_stem_of_mask(name).to_string() };
            masks.insert(e.rel.iter().map(|s| fold(s)).collect::<Vec<_>>().join("/"), mask);
        } else if is_image(name) {
            damaged.push(Found {
                full: e.full.clone(),
                split: Split::Test,
                split_name: String::new(),
                class: e.rel[0].clone(),
                stem: stem(name).to_string(),
                nested: false,
            });
        } else {
            problems.push(not_an_image(&e.full));
        }
    }

    let good_folder = good_folder.unwrap_or_else(|| "good".into());
    let mut parts = Parts { train: Vec::new(), validation: Vec::new(), test: Vec::new(), train_folder: good_folder.clone() };
    good.sort_by(|a, b| natural_cmp(a, b));
    for (i, path) in good.into_iter().enumerate() {
        if i % 2 == 0 {
            parts.train.push(path);
        } else {
            parts.test.push(Sample::good(path));
        }
    }

    // First pass: which mask each image would take. A mask directly in masks/ is
    // matched by name alone, so two damage folders can both claim it.
    let claims: Vec<Option<(String, bool)>> = damaged
        .iter()
        .map(|img| {
            let (class, stem) = (fold(&img.class), fold(&img.stem));
            mask_folders.values().find_map(|(md, _)| {
                let own = IMAGE_EXTENSIONS
                    .iter()
                    .flat_map(|ext| [format!("{md}/{class}/{stem}.{ext}"), format!("{md}/{class}/{stem}_mask.{ext}")]);
                let shared = IMAGE_EXTENSIONS.iter().flat_map(|ext| [format!("{md}/{stem}.{ext}"), format!("{md}/{stem}_mask.{ext}")]);
                own.map(|k| (k, false)).chain(shared.map(|k| (k, true))).find(|(k, _)| masks.contains_key(k))
            })
        })
        .collect();
    let mut claimants: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, claim) in claims.iter().enumerate() {
        if let Some((key, true)) = claim {
            claimants.entry(key.as_str()).or_default().push(i);
        }
    }
    let mut ambiguous: HashSet<usize> = HashSet::new();
    let mut ambiguous_keys: Vec<&str> = claimants
        .iter()
        .filter(|(_, who)| {
            let classes: HashSet<String> = who.iter().map(|i| fold(&damaged[*i].class)).collect();
            classes.len() > 1
        })
        .map(|(k, _)| *k)
        .collect();
    ambiguous_keys.sort_by(|a, b| natural_cmp(a, b));
    let mask_folder_shown = mask_folders.values().next().map(|(_, shown)| shown.clone());
    for key in &ambiguous_keys {
        let who = &claimants[key];
        ambiguous.extend(who.iter().copied());
        let images: Vec<&str> = who.iter().map(|i| damaged[*i].full.as_str()).collect();
        let full = masks.get(*key).map(|m| m.full.as_str()).unwrap_or(key);
        let md = mask_folder_shown.as_deref().unwrap_or("masks");
        problems.push(format!(
            "{full}: could be the mask of {}; move it into {root}{md}/<damage folder>/ to say which; ignored",
            images.join(" or ")
        ));
    }

    let mut used: HashSet<String> = ambiguous_keys.iter().map(|k| k.to_string()).collect();
    let mut missing = MissingReport::default();
    for (i, (img, claim)) in damaged.into_iter().zip(claims).enumerate() {
        let mask = match claim {
            Some((key, _)) if !ambiguous.contains(&i) => {
                let full = masks.get(&key).map(|m| m.full.clone());
                used.insert(key);
                full
            }
            _ => None,
        };
        // Masks are optional in this layout: only a folder that has some is held to it.
        if let (Some(md), false) = (&mask_folder_shown, ambiguous.contains(&i)) {
            let expected = format!("{root}{md}/{}.png", img.stem);
            missing.record(&format!("{root}{}/", img.class), &img.full, mask.is_none().then_some(expected));
        }
        parts.test.push(Sample {
            path: img.full,
            anomalous: true,
            category: Some(default_category(&img.class)),
            defect: img.class,
            mask,
            background: None,
        });
    }
    missing.report(problems);
    report_orphan_masks(masks, &used, problems);

    if !parts.test.iter().any(|s| s.anomalous) {
        problems.push(format!("{root}{good_folder}/: no damage folders next to it; only false alarms can be measured"));
    }
    if !parts.train.is_empty() && !parts.test.iter().any(|s| !s.anomalous) {
        problems.push(format!("{root}{good_folder}/: a single good image, used for training; none is left to test false alarms"));
    }
    parts
}

// ---------------------------------------------------------------------------------
// Category CSV

fn apply_csv(text: &str, root: &str, dataset: &mut Dataset) {
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    enum Target {
        Train,
        Validation(usize),
        Test(usize),
    }
    let mut index: HashMap<String, Target> = HashMap::new();
    let mut add = |full: &str, target: Target| {
        index.insert(fold(full), target);
        if let Some(rel) = full.strip_prefix(root).filter(|_| !root.is_empty()) {
            index.entry(fold(rel)).or_insert(target);
        }
    };
    for path in &dataset.train {
        add(path, Target::Train);
    }
    for (i, s) in dataset.validation.iter().enumerate() {
        add(&s.path, Target::Validation(i));
    }
    for (i, s) in dataset.test.iter().enumerate() {
        add(&s.path, Target::Test(i));
    }

    let problems = &mut dataset.problems;
    let rows = csv_records(text);
    let Some((_, first)) = rows.first() else {
        return;
    };
    let column = |name: &str| first.iter().position(|f| f.trim().eq_ignore_ascii_case(name));
    let is_header = ["path", "category", "background"].iter().any(|n| column(n).is_some());
    let (path_col, category_col, background_col, skip) = if is_header {
        let Some(p) = column("path") else {
            problems.push("category table: the header has no path column (expected path,category,background); table ignored".into());
            return;
        };
        (p, column("category"), column("background"), 1)
    } else {
        (0, Some(1), Some(2), 0)
    };

    let mut seen: HashMap<Target, usize> = HashMap::new();
    for (line, fields) in rows.iter().skip(skip) {
        let cell = |col: Option<usize>| col.and_then(|c| fields.get(c)).map(|s| s.trim()).unwrap_or("");
        let raw = cell(Some(path_col));
        if raw.is_empty() {
            problems.push(format!("category table line {line}: no path; row ignored"));
            continue;
        }
        let Some(target) = normalize(raw).and_then(|p| index.get(&fold(&p)).copied()) else {
            problems.push(format!("{raw}: listed on line {line} of the category table but not an image of this dataset; row ignored"));
            continue;
        };
        let sample = match target {
            Target::Train => {
                problems.push(format!(
                    "{raw}: a training image (line {line} of the category table); training images carry no \
                     category or background; row ignored"
                ));
                continue;
            }
            Target::Validation(i) => &mut dataset.validation[i],
            Target::Test(i) => &mut dataset.test[i],
        };
        if let Some(previous) = seen.insert(target, *line) {
            problems.push(format!(
                "{}: listed again on line {line} of the category table (first on line {previous}); the later row wins",
                sample.path
            ));
        }
        let category_text = cell(category_col);
        if !category_text.is_empty() {
            match category_text.parse::<Category>() {
                Ok(_) if !sample.anomalous => problems.push(format!(
                    "{}: a good image has no defect category (line {line} of the category table); category ignored",
                    sample.path
                )),
                Ok(category) => sample.category = Some(category),
                Err(err) => problems.push(format!("{}: line {line} of the category table: {err}; category unchanged", sample.path)),
            }
        }
        let background_text = cell(background_col);
        if !background_text.is_empty() {
            match parse_bool(background_text) {
                Some(b) => sample.background = Some(b),
                None => problems.push(format!(
                    "{}: background \"{background_text}\" on line {line} of the category table is not \
                     true/false, yes/no or 1/0; background unchanged",
                    sample.path
                )),
            }
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// Non-blank, non-comment records with their 1-based line numbers.
fn csv_records(text: &str) -> Vec<(usize, Vec<String>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut delimiter = None;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let d = *delimiter.get_or_insert_with(|| pick_delimiter(line));
        records.push((i + 1, split_record(line, d)));
    }
    records
}

/// Spreadsheets in locales with a decimal comma write `;`; judged on the first line.
fn pick_delimiter(line: &str) -> char {
    let mut quoted = false;
    let mut counts = [0usize; 3];
    let candidates = [',', ';', '\t'];
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|d| *d == c) {
                counts[i] += 1;
            }
        }
    }
    candidates.into_iter().zip(counts).find(|(_, n)| *n > 0).map_or(',', |(d, _)| d)
}

/// An unterminated quote runs to the end of the line rather than failing.
fn split_record(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    current.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                current.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == delimiter {
            fields.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    fields.push(current);
    fields
}

/// Orders digit runs by value (`2.png` before `10.png`), the rest bytewise; ties between
/// equal values written differently (`01` vs `1`) fall back to plain byte order, which
/// keeps this a total order.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let strip = |d: &[u8]| {
                let zeros = d.iter().take_while(|c| **c == b'0').count();
                d[zeros..].to_vec()
            };
            let (n, m) = (strip(&x[si..i]), strip(&y[sj..j]));
            let ord = n.len().cmp(&m.len()).then_with(|| n.cmp(&m));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = x[i].cmp(&y[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn sample<'a>(ds: &'a Dataset, path: &str) -> &'a Sample {
        ds.test.iter().chain(&ds.validation).find(|s| s.path == path).unwrap_or_else(|| panic!("no sample {path} in {ds:#?}"))
    }

    fn has_problem(ds: &Dataset, needle: &str) -> bool {
        ds.problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn mvtec_ad_flat() {
        let ds = parse(
            &paths(&[
                "LICENSE.txt",
                "train/good/001.png",
                "train/good/000.png",
                "train/good/notes.txt",
                "test/good/000.png",
                "test/cut/000.png",
                "test/cut/001.PNG",
                "test/hole/000.png",
                "ground_truth/cut/000_mask.png",
                "ground_truth/cut/001_mask.png",
                "ground_truth/hole/000_mask.png",
                "ground_truth/hole/007_mask.png",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(ds.layout, Layout::MvtecAd);
        assert_eq!(ds.train, paths(&["train/good/000.png", "train/good/001.png"]));
        assert!(ds.validation.is_empty());
        assert_eq!(ds.test.len(), 4);
        assert_eq!(sample(&ds, "test/good/000.png"), &Sample::good("test/good/000.png".into()));
        let cut = sample(&ds, "test/cut/001.PNG");
        assert!(cut.anomalous);
        assert_eq!(cut.defect, "cut");
        assert_eq!(cut.mask.as_deref(), Some("ground_truth/cut/001_mask.png"));
        assert_eq!(cut.category, Some(Category::Structural));
        assert_eq!(cut.background, None);
        assert_eq!(sample(&ds, "test/hole/000.png").mask.as_deref(), Some("ground_truth/hole/000_mask.png"));
        assert!(has_problem(&ds, "train/good/notes.txt: not an image"));
        assert!(has_problem(&ds, "ground_truth/hole/007_mask.png: no image named 007 in test/hole/"));
        assert_eq!(ds.problems.len(), 2, "{:#?}", ds.problems);
    }

    #[test]
    fn missing_mask_named_per_file_and_whole_folder_summarised() {
        let ds = parse(
            &paths(&[
                "train/good/000.png",
                "test/good/000.png",
                "test/cut/000.png",
                "test/cut/003.png",
                "ground_truth/cut/000_mask.png",
                "test/crack/000.png",
                "test/crack/001.png",
            ]),
            None,
        )
        .unwrap();
        assert!(
            ds.problems.contains(&"test/cut/003.png: no mask ground_truth/cut/003_mask.png; evaluated at image level only".to_string()),
            "{:#?}",
            ds.problems
        );
        assert!(has_problem(&ds, "test/crack/: none of its 2 images has a mask"));
        assert_eq!(ds.problems.len(), 2, "{:#?}", ds.problems);
        // Still evaluable at image level.
        assert_eq!(sample(&ds, "test/cut/003.png").mask, None);
        assert!(sample(&ds, "test/cut/003.png").anomalous);
    }

    #[test]
    fn mvtec_3d_nested_variant() {
        let ds = parse(
            &paths(&[
                "tire/calibration/camera_parameters.json",
                "tire/train/good/rgb/000.png",
                "tire/train/good/rgb/001.png",
                "tire/train/good/xyz/000.tiff",
                "tire/train/good/gt/000.png",
                "tire/validation/good/rgb/000.png",
                "tire/validation/good/xyz/000.tiff",
                "tire/test/good/rgb/000.png",
                "tire/test/good/gt/000.png",
                "tire/test/cut/rgb/000.png",
                "tire/test/cut/gt/000.png",
                "tire/test/cut/xyz/000.tiff",
                "tire/test/combined/rgb/000.png",
                "tire/test/combined/gt/000.png",
                "tire/README.md",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(ds.layout, Layout::MvtecAd);
        assert_eq!(ds.train, paths(&["tire/train/good/rgb/000.png", "tire/train/good/rgb/001.png"]));
        assert_eq!(ds.validation, vec![Sample::good("tire/validation/good/rgb/000.png".into())]);
        assert_eq!(ds.test.len(), 3);
        let cut = sample(&ds, "tire/test/cut/rgb/000.png");
        assert_eq!(cut.mask.as_deref(), Some("tire/test/cut/gt/000.png"));
        assert_eq!(cut.category, Some(Category::Structural));
        let combined = sample(&ds, "tire/test/combined/rgb/000.png");
        assert_eq!(combined.category, Some(Category::Combined));
        assert_eq!(sample(&ds, "tire/test/good/rgb/000.png").mask, None);
        assert!(ds.problems.is_empty(), "{:#?}", ds.problems);
    }

    #[test]
    fn btad_with_bmp_and_png_masks() {
        let ds = parse(
            &paths(&[
                "train/ok/0000.bmp",
                "train/ok/0001.bmp",
                "test/ok/0000.bmp",
                "test/ko/0000.bmp",
                "test/ko/0001.png",
                "test/ko/0002.png",
                "ground_truth/ko/0000.png",
                "ground_truth/ko/0001.bmp",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(ds.layout, Layout::Btad);
        assert_eq!(ds.train.len(), 2);
        let normal = sample(&ds, "test/ok/0000.bmp");
        assert!(!normal.anomalous);
        assert_eq!(normal.defect, "good");
        let ko = sample(&ds, "test/ko/0000.bmp");
        assert_eq!(ko.defect, "ko");
        assert_eq!(ko.mask.as_deref(), Some("ground_truth/ko/0000.png"));
        assert_eq!(ko.category, Some(Category::Surface));
        assert_eq!(sample(&ds, "test/ko/0001.png").mask.as_deref(), Some("ground_truth/ko/0001.bmp"));
        assert_eq!(ds.problems, vec!["test/ko/0002.png: no mask ground_truth/ko/0002.png; evaluated at image level only".to_string()]);
    }

    #[test]
    fn btad_empty_train_names_its_folder() {
        let err = parse(&paths(&["train/ok/readme.txt", "test/ko/0.png"]), None).unwrap_err();
        assert_eq!(err.to_string(), "train/ok has no images: a BTAD folder needs photos of good items there");
    }

    #[test]
    fn plain_layout_alternates_good_images_between_train_and_test() {
        let ds = parse(
            &paths(&[
                "good/10.jpg",
                "good/1.jpg",
                "good/2.jpg",
                "good/3.jpg",
                "good/Thumbs.db",
                "good/.DS_Store",
                "damaged/a.jpg",
                "damaged/b.jpg",
                "scratch/c.JPEG",
                "masks/a_mask.png",
                "masks/b.png",
                "masks/scratch/c.png",
                "masks/zzz.png",
                "notes.txt",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(ds.layout, Layout::Plain);
        assert_eq!(ds.train, paths(&["good/1.jpg", "good/3.jpg"]));
        let normal: Vec<&str> = ds.test.iter().filter(|s| !s.anomalous).map(|s| s.path.as_str()).collect();
        assert_eq!(normal, ["good/2.jpg", "good/10.jpg"]);
        assert_eq!(sample(&ds, "damaged/a.jpg").mask.as_deref(), Some("masks/a_mask.png"));
        assert_eq!(sample(&ds, "damaged/b.jpg").mask.as_deref(), Some("masks/b.png"));
        let scratch = sample(&ds, "scratch/c.JPEG");
        assert_eq!(scratch.mask.as_deref(), Some("masks/scratch/c.png"));
        assert_eq!(scratch.category, Some(Category::Surface));
        assert_eq!(scratch.defect, "scratch");
        assert_eq!(ds.problems, vec!["masks/zzz.png: no image named zzz in the damage folders; mask ignored".to_string()]);
    }

    #[test]
    fn plain_layout_without_masks_is_fine_and_normal_folder_counts_as_good() {
        let ds = parse(&paths(&["normal/0.png", "normal/1.png", "crack/0.png", "crack/sub/1.png"]), None).unwrap();
        assert_eq!(ds.train, paths(&["normal/0.png"]));
        assert_eq!(ds.test.len(), 3);
        assert_eq!(sample(&ds, "normal/1.png").defect, "good");
        assert_eq!(sample(&ds, "crack/sub/1.png").defect, "crack");
        assert!(ds.problems.is_empty(), "{:#?}", ds.problems);
    }

    #[test]
    fn plain_mask_shared_by_two_damage_folders_is_not_guessed() {
        let ds = parse(&paths(&["good/0.png", "good/1.png", "dent/0.png", "scratch/0.png", "masks/0.png"]), None).unwrap();
        assert!(ds.test.iter().all(|s| s.mask.is_none()));
        assert!(has_problem(&ds, "masks/0.png: could be the mask of dent/0.png or scratch/0.png"));
        assert_eq!(ds.problems.len(), 1, "{:#?}", ds.problems);
    }

    #[test]
    fn plain_layout_reports_when_nothing_is_damaged() {
        let ds = parse(&paths(&["good/0.png"]), None).unwrap();
        assert_eq!(ds.train.len(), 1);
        assert!(has_problem(&ds, "good/: no damage folders"));
        assert!(has_problem(&ds, "good/: a single good image"));
    }

    #[test]
    fn empty_train_is_an_error_naming_the_folder() {
        let err = parse(&paths(&["train/good/readme.txt", "test/cut/000.png"]), None).unwrap_err();
        assert!(matches!(err, DatasetError::NoTrainImages { layout: Layout::MvtecAd, .. }));
        assert_eq!(err.to_string(), "train/good has no images: an MVTec AD folder needs photos of good items there");
        let err = parse(&paths(&["wrap/test/cut/000.png"]), None).unwrap_err();
        assert!(err.to_string().starts_with("wrap/train/good has no images"), "{err}");
        let err = parse(&paths(&["good/a.txt", "bad/0.png"]), None).unwrap_err();
        assert!(err.to_string().starts_with("good has no images"), "{err}");
    }

    #[test]
    fn unrecognised_layout_lists_the_three_layouts() {
        let err = parse(&paths(&["photos/1.png", "scans/2.png", "readme.md"]), None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DatasetError::Unrecognised { .. }));
        assert!(msg.contains("photos/, scans/, readme.md"), "{msg}");
        for layout in ["MVTec AD", "BTAD", "plain folders"] {
            assert!(msg.contains(layout), "{msg}");
        }
        assert!(matches!(parse(&[], None), Err(DatasetError::NoFiles { .. })));
        assert!(matches!(parse(&paths(&[".hidden", "__MACOSX/x.png"]), None), Err(DatasetError::NoFiles { .. })));
    }

    #[test]
    fn several_datasets_ask_to_choose_one() {
        let err = parse(&paths(&["bottle/train/good/0.png", "cable/train/good/0.png", "readme.txt"]), None).unwrap_err();
        assert_eq!(err.to_string(), "the selected folder holds several datasets (bottle/, cable/): choose one of these folders");
    }

    #[test]
    fn single_dataset_next_to_other_folders_is_found() {
        let ds = parse(&paths(&["docs/a.pdf", "tire/train/good/0.png", "tire/test/good/0.png"]), None).unwrap();
        assert_eq!(ds.train, paths(&["tire/train/good/0.png"]));
    }

    #[test]
    fn odd_files_are_reported_with_their_names() {
        let ds = parse(
            &paths(&[
                "train/good/0.png",
                "train/cut/0.png",
                "train/stray.png",
                "test/good/0.png",
                "test/cut/0.png",
                "test/cut/deep/er/0.png",
                "ground_truth/cut/0_mask.png",
                "ground_truth/cut/0_mask.psd",
                "extra/x.png",
                "..\\..\\etc\\passwd",
            ]),
            None,
        )
        .unwrap();
        for needle in [
            "train/cut/: training uses photos of good items only",
            "train/stray.png: not inside a class folder",
            "test/cut/deep/er/: unexpected folder",
            "ground_truth/cut/0_mask.psd: not an image",
            "extra/: not part of the MVTec AD layout",
        ] {
            assert!(has_problem(&ds, needle), "{needle} not in {:#?}", ds.problems);
        }
        assert_eq!(ds.problems.len(), 5, "{:#?}", ds.problems);
    }

    #[test]
    fn csv_overrides_category_and_background() {
        let csv = "\u{feff}path,category,background\r\n\
                   test/cut/000.png,surface,yes\r\n\
                   \r\n\
                   # hand-checked\r\n\
                   \"test/hole/000.png\",\"Contamination\",0\r\n\
                   test/good/000.png,,true\r\n";
        let ds = parse(&mvtec_small(), Some(csv)).unwrap();
        let cut = sample(&ds, "test/cut/000.png");
        assert_eq!((cut.category, cut.background), (Some(Category::Surface), Some(true)));
        let hole = sample(&ds, "test/hole/000.png");
        assert_eq!((hole.category, hole.background), (Some(Category::Contamination), Some(false)));
        let good = sample(&ds, "test/good/000.png");
        assert_eq!((good.category, good.background), (None, Some(true)));
        assert!(ds.problems.is_empty(), "{:#?}", ds.problems);
    }

    #[test]
    fn csv_without_header_semicolons_and_wrapper_relative_paths() {
        let paths: Vec<String> = mvtec_small().iter().map(|p| format!("tire/{p}")).collect();
        let ds = parse(&paths, Some("test/cut/000.png;combined\ntire/test/hole/000.png;;no\n")).unwrap();
        assert_eq!(sample(&ds, "tire/test/cut/000.png").category, Some(Category::Combined));
        assert_eq!(sample(&ds, "tire/test/hole/000.png").background, Some(false));
        assert!(ds.problems.is_empty(), "{:#?}", ds.problems);
    }

    #[test]
    fn csv_mistakes_become_problems() {
        let csv = "category,path,background,comment\n\
                   structural,test/cut/999.png,,\n\
                   dents,test/cut/000.png,maybe,\"a, b\"\n\
                   surface,train/good/000.png\n\
                   surface,test/good/000.png\n\
                   ,,\n\
                   combined,test/hole/000.png\n\
                   surface,test/hole/000.png\n\
                   \"unterminated,test/x\n";
        let ds = parse(&mvtec_small(), Some(csv)).unwrap();
        let cut = sample(&ds, "test/cut/000.png");
        assert_eq!((cut.category, cut.background), (Some(Category::Structural), None));
        assert_eq!(sample(&ds, "test/hole/000.png").category, Some(Category::Surface));
        for needle in [
            "test/cut/999.png: listed on line 2 of the category table but not an image of this dataset",
            "test/cut/000.png: line 3 of the category table: unknown defect category \"dents\"",
            "test/cut/000.png: background \"maybe\" on line 3",
            "train/good/000.png: a training image (line 4",
            "test/good/000.png: a good image has no defect category (line 5",
            "category table line 6: no path",
            "test/hole/000.png: listed again on line 8 of the category table (first on line 7)",
        ] {
            assert!(has_problem(&ds, needle), "{needle} not in {:#?}", ds.problems);
        }
        assert_eq!(ds.problems.len(), 8, "{:#?}", ds.problems);
    }

    #[test]
    fn csv_header_without_path_is_reported_once() {
        let ds = parse(&mvtec_small(), Some("file,category\ntest/cut/000.png,surface\n")).unwrap();
        assert_eq!(ds.problems.len(), 1);
        assert!(has_problem(&ds, "no path column"));
        assert_eq!(sample(&ds, "test/cut/000.png").category, Some(Category::Structural));
        assert!(parse(&mvtec_small(), Some("")).unwrap().problems.is_empty());
    }

    fn mvtec_small() -> Vec<String> {
        paths(&[
            "train/good/000.png",
            "test/good/000.png",
            "test/cut/000.png",
            "test/hole/000.png",
            "ground_truth/cut/000_mask.png",
            "ground_truth/hole/000_mask.png",
        ])
    }

    #[test]
    fn default_category_table() {
        let cases = [
            ("hole", Category::Structural),
            ("cut", Category::Structural),
            ("crack", Category::Structural),
            ("broken_large", Category::Structural),
            ("broken_small", Category::Structural),
            ("bent_wire", Category::Structural),
            ("missing_cable", Category::Structural),
            ("fabric_border", Category::Structural),
            ("fabric_interior", Category::Structural),
            ("squeezed_teeth", Category::Structural),
            ("manipulated_front", Category::Structural),
            ("thread_side", Category::Structural),
            ("cable_swap", Category::Structural),
            ("damaged_case", Category::Structural),
            ("misplaced", Category::Structural),
            ("dent", Category::Structural),
            ("large_hole", Category::Structural),
            ("Holes", Category::Structural),
            ("scratch", Category::Surface),
            ("scratch_head", Category::Surface),
            ("color", Category::Surface),
            ("print", Category::Surface),
            ("faulty_imprint", Category::Surface),
            ("rough", Category::Surface),
            ("gray_stroke", Category::Surface),
            ("thread", Category::Surface),
            ("pill_type", Category::Surface),
            ("rust", Category::Surface),
            ("scratches", Category::Surface),
            ("contamination", Category::Contamination),
            ("metal_contamination", Category::Contamination),
            ("glue", Category::Contamination),
            ("glue_strip", Category::Contamination),
            ("oil", Category::Contamination),
            ("liquid", Category::Contamination),
            ("stain", Category::Contamination),
            ("foil_tear", Category::Structural),
            ("combined", Category::Combined),
            ("ko", Category::Surface),
            ("damaged", Category::Surface),
            ("something-new", Category::Surface),
            ("", Category::Surface),
        ];
        for (name, expected) in cases {
            assert_eq!(default_category(name), expected, "{name}");
        }
    }

    #[test]
    fn category_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.to_string().parse::<Category>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(" Structural ".parse::<Category>(), Ok(Category::Structural));
        assert!("dent".parse::<Category>().unwrap_err().to_string().contains("expected structural"));
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["a10", "a2", "a02", "b", "a", "a1b", "a1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "a1", "a1b", "a02", "a2", "a10", "b"]);
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(
            list in proptest::collection::vec("[a-zA-Z0-9_./\\\\ -]{0,30}", 0..20),
            csv in "[a-z0-9_/,;\"\t\r\n. -]{0,200}",
        ) {
            let _ = parse(&list, Some(&csv));
        }

        #[test]
        fn natural_cmp_is_a_total_order(a in "[a0-9]{0,6}", b in "[a0-9]{0,6}", c in "[a0-9]{0,6}") {
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            prop_assert_eq!(natural_cmp(&a, &b) == Ordering::Equal, a == b);
            if natural_cmp(&a, &b) != Ordering::Greater && natural_cmp(&b, &c) != Ordering::Greater {
                prop_assert_ne!(natural_cmp(&a, &c), Ordering::Greater);
            }
        }
    }
}
