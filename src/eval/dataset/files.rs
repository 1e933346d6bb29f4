//! Which files count: listing a folder (native only), normalising the paths a browser
//! or the filesystem gives, and skipping what nobody means to include (hidden files,
//! OS litter). File and folder names are compared without regard to case.

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

#[cfg(not(target_arch = "wasm32"))]
use super::natural_sort::natural_cmp;

/// Symbolic links are followed (datasets often live elsewhere); this bounds a cycle.
#[cfg(not(target_arch = "wasm32"))]
const MAX_DEPTH: usize = 32;

#[cfg(not(target_arch = "wasm32"))]
pub(super) fn walk(dir: &Path, rel: &str, depth: usize, files: &mut Vec<String>, problems: &mut Vec<String>) -> std::io::Result<()> {
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

/// Relative path with `/` separators, or `None` for files nobody means to include
/// (hidden files, OS litter) and for paths that would climb out of the dataset.
pub(super) fn normalize(path: &str) -> Option<String> {
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

pub(super) fn fold(s: &str) -> String {
    s.to_lowercase()
}
