//! The one rule that names a mask after its photo, for every caller: the dataset
//! layouts, the app's calibration (masks dropped next to the photos) and the CLI's
//! `calibrate --masks DIR`. Before it, each had its own: case-sensitive in one, PNG only
//! in another, so a mask found by the CLI could be missed by the app.
//!
//! A mask of the photo `cell7.jpg` is called `cell7_mask.<ext>` or `cell7.<ext>`, with any
//! image extension ([`IMAGE_EXTENSIONS`]: a mask is usually a PNG whatever the photo is).
//! Names are compared without regard to case, the extension, the `_mask` suffix and the
//! name alike: Windows and macOS treat `Cell7_Mask.PNG` and `cell7_mask.png` as one file,
//! and converted datasets mix the spellings. Only file names are compared, never folders.
//!
//! When a name fits two ways (the photos `x.jpg` and `x_mask.jpg` for the mask
//! `x_mask.png`; the masks `x.png` and `x_mask.png` for the photo `x.jpg`), the `_mask`
//! reading wins, the MVTec AD convention, unless a layout prefers its own (BTAD names
//! masks like their images).

/// File extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

/// What a mask's name adds to its photo's: `cell7_mask.png` for `cell7.jpg`.
pub const MASK_SUFFIX: &str = "_mask";

/// How a mask is named after its photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskNaming {
    /// `<name>_mask.<ext>` (MVTec AD).
    Suffixed,
    /// `<name>.<ext>`, the photo's own name (BTAD, MVTec 3D-AD's `gt/`).
    SameName,
}

/// A file name's stem and extension; a leading dot (`.png`) is a name, not an extension.
pub fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    }
}

/// Whether `name` has one of the [`IMAGE_EXTENSIONS`].
pub fn is_image_name(name: &str) -> bool {
    split_extension(name).1.is_some_and(|ext| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// A file name without its extension.
pub fn stem(name: &str) -> &str {
    split_extension(name).0
}

/// The stem of the photo a mask file belongs to by the suffixed convention: its own stem
/// without the `_mask` suffix (any case), or its whole stem when it has none.
pub fn photo_stem_of_mask(mask: &str) -> &str {
    strip_mask_suffix(stem(mask))
}

/// `s` without a trailing `_mask` (any case), unless nothing would be left.
fn strip_mask_suffix(s: &str) -> &str {
    let cut = s.len().saturating_sub(MASK_SUFFIX.len());
    match (s.get(cut..), s.get(..cut)) {
        (Some(suffix), Some(rest)) if suffix.eq_ignore_ascii_case(MASK_SUFFIX) && !rest.is_empty() => rest,
        _ => s,
    }
}

/// How `mask` is named after `photo` (file names), or `None` when it is no mask of it.
pub fn mask_naming(photo: &str, mask: &str) -> Option<MaskNaming> {
    if !is_image_name(mask) {
        return None;
    }
    let (photo_stem, mask_stem) = (stem(photo).to_lowercase(), stem(mask).to_lowercase());
    let bare = strip_mask_suffix(&mask_stem);
    if bare.len() < mask_stem.len() && bare == photo_stem {
        Some(MaskNaming::Suffixed)
    } else if mask_stem == photo_stem {
        Some(MaskNaming::SameName)
    } else {
        None
    }
}

/// Whether the file `mask` is named as a mask of the photo `photo`.
pub fn is_mask_of(photo: &str, mask: &str) -> bool {
    mask_naming(photo, mask).is_some()
}

/// Every name a mask of the photo with stem `photo_stem` may have, lowercase (compare
/// lowercased names with them), the `prefer`red naming first, extensions in the order of
/// [`IMAGE_EXTENSIONS`]. For callers that look names up rather than compare them.
pub fn mask_file_names(photo_stem: &str, prefer: MaskNaming) -> Vec<String> {
    let stem = photo_stem.to_lowercase();
    let suffixed = IMAGE_EXTENSIONS.iter().map(|ext| format!("{stem}{MASK_SUFFIX}.{ext}"));
    let same = IMAGE_EXTENSIONS.iter().map(|ext| format!("{stem}.{ext}"));
    match prefer {
        MaskNaming::Suffixed => suffixed.chain(same).collect(),
        MaskNaming::SameName => same.chain(suffixed).collect(),
    }
}

/// The photo a mask file belongs to, by name: `cell7_mask.png` or `cell7.png` (any image
/// extension, any case) for the photo `cell7.jpg`.
pub fn mask_target<'a>(mask: &str, photos: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    best(photos, |photo| mask_naming(photo, mask))
}

/// The mask among `masks` (file names) that belongs to the photo `photo`.
pub fn find_mask<'a>(photo: &str, masks: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    best(masks, |mask| mask_naming(photo, mask))
}

/// The first candidate matching by the suffixed convention, else the first matching at all.
fn best<'a>(candidates: impl IntoIterator<Item = &'a str>, naming: impl Fn(&str) -> Option<MaskNaming>) -> Option<&'a str> {
    let mut same_name = None;
    for candidate in candidates {
        match naming(candidate) {
            Some(MaskNaming::Suffixed) => return Some(candidate),
            Some(MaskNaming::SameName) => {
                same_name.get_or_insert(candidate);
            }
            None => {}
        }
    }
    same_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let cases = [
            ("cell7.png", "cell7.png", Some(MaskNaming::SameName)),
            ("cell7.png", "cell7_mask.png", Some(MaskNaming::Suffixed)),
            ("cell7.jpg", "cell7.png", Some(MaskNaming::SameName)),
            ("cell7.jpg", "cell7_mask.png", Some(MaskNaming::Suffixed)),
            ("000.png", "000_mask.bmp", Some(MaskNaming::Suffixed)),
            ("0001.bmp", "0001.png", Some(MaskNaming::SameName)),
            ("scan.jpeg", "scan_mask.tiff", Some(MaskNaming::Suffixed)),
            // Case: extension, suffix and name.
            ("cell7.JPG", "cell7_mask.PNG", Some(MaskNaming::Suffixed)),
            ("cell7.png", "cell7_MASK.png", Some(MaskNaming::Suffixed)),
            ("Cell7.png", "cell7_Mask.Png", Some(MaskNaming::Suffixed)),
            ("IMG_0001.JPG", "img_0001.png", Some(MaskNaming::SameName)),
            // A photo whose own name ends in _mask.
            ("x_mask.jpg", "x_mask.png", Some(MaskNaming::SameName)),
            ("x_mask.jpg", "x_mask_mask.png", Some(MaskNaming::Suffixed)),
            // Dots inside the name.
            ("a.b.jpg", "a.b_mask.png", Some(MaskNaming::Suffixed)),
            ("a.b.jpg", "a.b.png", Some(MaskNaming::SameName)),
            ("a.jpg", "a.b_mask.png", None),
            // Not masks of it.
            ("cell7.png", "cell17.png", None),
            ("cell17.png", "cell7.png", None),
            ("cell7.png", "cell7_mask.psd", None),
            ("cell7.png", "cell7.txt", None),
            ("cell7.png", "cell7", None),
            ("cell7.png", "cell7-mask.png", None),
            ("cell7.png", "cell7_mask_2.png", None),
            ("x.png", "x_mask_mask.png", None),
            ("_mask.png", "_mask.png", Some(MaskNaming::SameName)),
        ];
        for (photo, mask, expected) in cases {
            assert_eq!(mask_naming(photo, mask), expected, "{mask} for {photo}");
            assert_eq!(is_mask_of(photo, mask), expected.is_some(), "{mask} for {photo}");
        }
    }

    #[test]
    fn photo_stems_of_masks() {
        for (mask, stem) in [
            ("000_mask.png", "000"),
            ("000_MASK.PNG", "000"),
            ("000.png", "000"),
            ("_mask.png", "_mask"),
            ("a.b_mask.png", "a.b"),
            ("noext", "noext"),
            ("x_mask", "x"),
        ] {
            assert_eq!(photo_stem_of_mask(mask), stem, "{mask}");
        }
    }

    #[test]
    fn image_names() {
        assert!(is_image_name("a.png") && is_image_name("a.JPEG") && is_image_name("a.b.TiF"));
        assert!(!is_image_name("a.psd") && !is_image_name(".png") && !is_image_name("png") && !is_image_name("a."));
        assert_eq!(split_extension(".hidden"), (".hidden", None));
        assert_eq!(stem("a.b.png"), "a.b");
    }

    /// The names generated for look-ups are exactly the names the rule accepts.
    #[test]
    fn looked_up_names_follow_the_rule() {
        let names = mask_file_names("Cell7", MaskNaming::Suffixed);
        assert_eq!(names.len(), 2 * IMAGE_EXTENSIONS.len());
        assert_eq!(names[0], "cell7_mask.png");
        assert_eq!(mask_file_names("Cell7", MaskNaming::SameName)[0], "cell7.png");
        for name in &names {
            assert!(is_mask_of("Cell7.jpg", name), "{name}");
            assert!(is_mask_of("cell7.jpg", &name.to_uppercase()), "{name}");
        }
        for mask in ["cell7_mask.png", "CELL7.JPG", "cell7_Mask.tif"] {
            assert!(names.contains(&mask.to_lowercase()), "{mask}");
        }
    }

    #[test]
    fn masks_find_their_photo_and_photos_their_mask() {
        let photos = ["cell7.jpg", "cell17.png"];
        assert_eq!(mask_target("cell7.png", photos), Some("cell7.jpg"));
        assert_eq!(mask_target("cell7_mask.png", photos), Some("cell7.jpg"));
        assert_eq!(mask_target("CELL7_MASK.PNG", photos), Some("cell7.jpg"));
        assert_eq!(mask_target("cell1.png", photos), None);
        // Two readings: the _mask one wins, in either order.
        assert_eq!(mask_target("x_mask.png", ["x_mask.jpg", "x.jpg"]), Some("x.jpg"));
        assert_eq!(find_mask("x.jpg", ["x.png", "x_mask.png"]), Some("x_mask.png"));
        assert_eq!(find_mask("x.jpg", ["notes.txt", "X.PNG"]), Some("X.PNG"));
        assert_eq!(find_mask("x.jpg", ["x.txt", "y_mask.png"]), None);
    }
}
