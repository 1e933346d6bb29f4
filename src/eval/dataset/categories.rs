//! Defect categories.
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

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
