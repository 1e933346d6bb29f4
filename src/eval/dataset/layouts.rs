//! The dataset layouts, and how the one in a folder is recognised.
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
//! any image extension, any case: the one rule of `eval::masks`), because converted
//! datasets mix them. Good images never get a
//! mask: they are normal everywhere by definition, and MVTec 3D-AD's all-black masks
//! for them carry no information.
//!
//! If the chosen folder holds a single folder (a zip extracted into `tire/tire/`), the
//! layout is looked for inside it, a few levels deep; if it holds several datasets
//! (the whole MVTec AD download), the error asks to choose one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::categories::default_category;
use super::categories_csv::apply_csv;
use super::files::{fold, normalize};
use super::natural_sort::natural_cmp;
use super::{Dataset, DatasetError, Layout, Sample};
use crate::eval::masks::{is_image_name as is_image, mask_file_names, photo_stem_of_mask, stem, MaskNaming};

/// Folder names meaning "normal items" in every layout.
const NORMAL_FOLDERS: [&str; 3] = ["good", "ok", "normal"];

/// Mask folder names of the plain layout, in lookup order.
const PLAIN_MASK_FOLDERS: [&str; 4] = ["masks", "mask", "ground_truth", "gt"];

/// How many single wrapper folders are looked through to find the dataset.
const MAX_WRAPPERS: usize = 3;

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

pub(super) fn parse_with<'a>(
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

fn is_normal_folder(name: &str) -> bool {
    NORMAL_FOLDERS.iter().any(|n| n.eq_ignore_ascii_case(name))
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
                        image_stem: photo_stem_of_mask(name).to_string(),
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
                    image_stem: photo_stem_of_mask(name).to_string(),
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
    let (split, class) = (fold(&img.split_name), fold(&img.class));
    let nested: Vec<String> =
        mask_file_names(&img.stem, MaskNaming::SameName).into_iter().map(|name| format!("{split}/{class}/gt/{name}")).collect();
    // The flat ground_truth/ folder belongs to the test split.
    let flat: Vec<String> = if img.split == Split::Test {
        let prefer = if layout == Layout::Btad { MaskNaming::SameName } else { MaskNaming::Suffixed };
        mask_file_names(&img.stem, prefer).into_iter().map(|name| format!("ground_truth/{class}/{name}")).collect()
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
            let mask = MaskFile { full: e.full.clone(), image_folder, image_stem: photo_stem_of_mask(name).to_string() };
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
            let class = fold(&img.class);
            let names = mask_file_names(&img.stem, MaskNaming::SameName);
            mask_folders.values().find_map(|(md, _)| {
                let own = names.iter().map(|name| format!("{md}/{class}/{name}"));
                let shared = names.iter().map(|name| format!("{md}/{name}"));
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

#[cfg(test)]
mod tests {
    use super::super::test_util::{has_problem, paths, sample};
    use super::super::*;

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

    /// The naming rule of `eval::masks` holds in every layout: either convention, any
    /// image extension, any case.
    #[test]
    fn mask_names_follow_the_one_rule_in_every_layout() {
        let nested =
            parse(&paths(&["train/good/rgb/000.png", "test/good/rgb/000.png", "test/cut/rgb/000.png", "test/cut/gt/000_MASK.png"]), None)
                .unwrap();
        assert_eq!(sample(&nested, "test/cut/rgb/000.png").mask.as_deref(), Some("test/cut/gt/000_MASK.png"));
        let mvtec =
            parse(&paths(&["train/good/0.png", "test/good/0.png", "test/cut/Img1.JPG", "ground_truth/cut/img1_Mask.Jpeg"]), None).unwrap();
        assert_eq!(sample(&mvtec, "test/cut/Img1.JPG").mask.as_deref(), Some("ground_truth/cut/img1_Mask.Jpeg"));
        let plain = parse(&paths(&["good/0.png", "good/1.png", "dent/A.jpg", "masks/a_MASK.PNG"]), None).unwrap();
        assert_eq!(sample(&plain, "dent/A.jpg").mask.as_deref(), Some("masks/a_MASK.PNG"));
        for ds in [&nested, &mvtec, &plain] {
            assert!(ds.problems.is_empty(), "{:#?}", ds.problems);
        }
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
}
