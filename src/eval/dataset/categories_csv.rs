//! The category CSV: per-image defect categories and backgrounds, overriding what the
//! folder names suggest.
//!
//! Header `path,category,background` (`background` optional: `true/false`, `yes/no`,
//! `1/0`; columns in any order, extra columns ignored; without a header the columns are
//! taken in that order). `path` is relative to the dataset, like `test/cut/000.png`.
//! `;` or tab separators (spreadsheets in some locales) and `"quoted"` fields are
//! accepted; a field cannot span lines; blank lines and lines starting with `#` are
//! skipped. An empty cell leaves that value unchanged. Rows naming no image of the
//! dataset, unknown categories and unreadable booleans are reported in `problems`.

use std::collections::HashMap;

use super::files::{fold, normalize};
use super::{Category, Dataset};

pub(super) fn apply_csv(text: &str, root: &str, dataset: &mut Dataset) {
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

#[cfg(test)]
mod tests {
    use super::super::test_util::{has_problem, paths, sample};
    use super::super::*;

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
}
