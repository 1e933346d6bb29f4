//! Choosing the method for a product from its own good photos.
//!
//! Without damaged photos there is nothing to rank methods on, so the chooser makes some:
//! each held-out good photo (or, for a product of few photos, each unlearnt hand-held
//! copy) gets made-up damage drawn onto it: a scratch, a patch of the photo pasted where it
//! does not belong, and a stain. Every candidate method is trained on the same learnt
//! photos, and the one whose image scores best tell the damaged copies from the good
//! held-out photos (image AUROC) is kept. The candidates share one backbone run per photo.
//!
//! A clear win also says something about the photos: a position-aware model (PaDiM)
//! wins when items sit in the same place in every photo; a method that searches every
//! position (PatchCore) wins when they move. The profile keeps the reason in plain words.

use image::{Rgb, RgbImage};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::settings::TrainSettings;

/// Hand-held copies learnt per photo by the candidate that learns them.
pub const CANDIDATE_COPIES: u32 = 3;
/// Candidates scoring within this much image AUROC of the best count as equal, and the
/// cheapest of them is kept: a few dozen made-up photos cannot tell smaller differences.
pub const TIE: f64 = 0.01;
/// Made-up damage per held-out photo: one of each kind.
pub const KINDS: u64 = 3;
/// How strongly made-up damage changes brightness: faint enough that the methods differ
/// in how many they find (damage every method finds ranks none above another).
const CONTRAST: f64 = 0.5;

/// A method the chooser weighs, cheapest to run first (hand-held copies cost training
/// time only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    Padim,
    PadimHandHeld,
    PatchCore,
    PatchCoreHandHeld,
    Ensemble,
}

impl Candidate {
    pub const ALL: [Candidate; 5] =
        [Candidate::Padim, Candidate::PadimHandHeld, Candidate::PatchCore, Candidate::PatchCoreHandHeld, Candidate::Ensemble];

    pub fn name(self) -> &'static str {
        match self {
            Candidate::Padim => "PaDiM",
            Candidate::PadimHandHeld => "PaDiM with hand-held copies",
            Candidate::PatchCore => "PatchCore",
            Candidate::PatchCoreHandHeld => "PatchCore with hand-held copies",
            Candidate::Ensemble => "Ensemble",
        }
    }

    /// How this candidate is trained on its own.
    pub fn settings(self) -> TrainSettings {
        match self {
            Candidate::Padim => TrainSettings::padim(),
            Candidate::PadimHandHeld => TrainSettings { augment: CANDIDATE_COPIES, ..TrainSettings::padim() },
            Candidate::PatchCore => TrainSettings::patchcore(),
            Candidate::PatchCoreHandHeld => TrainSettings { augment: CANDIDATE_COPIES, ..TrainSettings::patchcore() },
            Candidate::Ensemble => TrainSettings::ensemble(),
        }
    }

    /// Learns what belongs at each spot (Some(true)), looks for each patch anywhere
    /// (Some(false)), or both (None).
    fn positional(self) -> Option<bool> {
        match self {
            Candidate::Padim | Candidate::PadimHandHeld => Some(true),
            Candidate::PatchCore | Candidate::PatchCoreHandHeld => Some(false),
            Candidate::Ensemble => None,
        }
    }

    /// What winning says about the person's photos, in plain words.
    fn photos(self) -> &'static str {
        match self {
            Candidate::Padim => "Your items sit in the same place in every photo, so learning what belongs at each spot works well.",
            Candidate::PadimHandHeld => {
                "Your items sit in about the same place in every photo, so learning what belongs at each spot works well; \
                 learning shifted and turned copies of each photo too lets it allow for a camera held by hand."
            }
            Candidate::PatchCore => {
                "Your items sit in different places or look different from photo to photo, so looking for each patch \
                 anywhere in the good photos works better than learning what belongs at each spot."
            }
            Candidate::PatchCoreHandHeld => {
                "Your items sit in different places or look different from photo to photo, so looking for each patch \
                 anywhere in the good photos works better than learning what belongs at each spot; learning shifted and \
                 turned copies of each photo too helps with a camera held by hand."
            }
            Candidate::Ensemble => {
                "Learning what belongs at each spot and looking for each patch anywhere did better together than either alone."
            }
        }
    }
}

/// Why a profile's method was chosen, kept in the profile and shown with the product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// The candidate kept (its [`Candidate::name`]).
    pub chosen: String,
    /// In plain words, for the person.
    pub why: String,
    /// Each candidate's image AUROC on the made-up damage, in [`Candidate::ALL`]'s order.
    pub scores: Vec<(String, f32)>,
    /// Made-up damaged photos and good held-out photos it was measured on.
    pub damaged: usize,
    pub good: usize,
}

impl MethodReport {
    const MAX_WHY: usize = 1000;

    /// A report read from a file is shown on screen: bounded, finite, one of ours.
    pub fn is_valid(&self) -> bool {
        let known = |name: &str| Candidate::ALL.iter().any(|c| c.name() == name);
        known(&self.chosen)
            && self.why.len() <= MethodReport::MAX_WHY
            && self.scores.len() <= Candidate::ALL.len()
            && self.scores.iter().all(|(n, s)| known(n) && (0.0..=1.0).contains(s))
    }
}

/// Image AUROC by its definition: the share of (damaged, good) pairs the damaged one
/// scores higher in, ties counting half. None without both kinds.
pub fn pairwise_auroc(damaged: &[f32], good: &[f32]) -> Option<f64> {
    if damaged.is_empty() || good.is_empty() {
        return None;
    }
    let wins: f64 = damaged
        .iter()
        .map(|d| {
            good.iter()
                .map(|g| match d.partial_cmp(g) {
                    Some(std::cmp::Ordering::Greater) => 1.0,
                    Some(std::cmp::Ordering::Equal) => 0.5,
                    _ => 0.0,
                })
                .sum::<f64>()
        })
        .sum();
    Some(wins / (damaged.len() * good.len()) as f64)
}

/// Keeps the best candidate, the cheapest of those within [`TIE`] of it; `scores` are
/// each candidate's AUROC (None: not measurable).
pub fn decide(scores: &[(Candidate, Option<f64>)]) -> Option<Candidate> {
    let best = scores.iter().filter_map(|(_, s)| *s).fold(f64::NEG_INFINITY, f64::max);
    let mut near: Vec<Candidate> = scores.iter().filter(|(_, s)| s.is_some_and(|s| s >= best - TIE)).map(|(c, _)| *c).collect();
    near.sort_by_key(|c| Candidate::ALL.iter().position(|a| a == c));
    near.first().copied()
}

/// The report of a choice, with the reason in plain words.
pub fn report(scores: &[(Candidate, Option<f64>)], chosen: Candidate, damaged: usize, good: usize) -> MethodReport {
    let score_of = |c: Candidate| scores.iter().find(|(s, _)| *s == c).and_then(|(_, s)| *s);
    let (best, best_score) =
        scores.iter().filter_map(|(c, s)| s.map(|s| (*c, s))).fold((chosen, f64::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b });
    let own = score_of(chosen).unwrap_or(f64::NAN);
    let other_kind = chosen.positional().map(|p| Some(!p));
    let how = if best == chosen {
        format!("best ({own:.3}, where 1 is perfect")
    } else {
        format!("about as well as the best, {}, for less work ({own:.3} against {best_score:.3}, where 1 is perfect", best.name())
    };
    let others: Vec<String> =
        scores.iter().filter(|(c, _)| *c != chosen && *c != best).filter_map(|(c, s)| s.map(|s| format!("{} {s:.3}", c.name()))).collect();
    let others = if others.is_empty() { String::new() } else { format!("; {}", others.join(", ")) };
    let why = format!(
        "Chosen automatically: {} told {damaged} copies of your good photos with made-up scratches, stains and misplaced \
         patches from {good} good photos it had not learnt {how}{others}). {}",
        chosen.name(),
        // A pick says something about the photos only when the other kind of method
        // did clearly worse; a cheaper pick among near-equals does not.
        if scores.iter().filter(|(c, _)| Some(c.positional()) == other_kind).all(|(_, s)| s.is_none_or(|s| own - s > TIE)) {
            chosen.photos()
        } else {
            "On your photos the methods did about equally well, so the one with the least work per photo was kept."
        }
    );
    MethodReport {
        chosen: chosen.name().to_string(),
        why,
        scores: scores.iter().filter_map(|(c, s)| s.map(|s| (c.name().to_string(), s as f32))).collect(),
        damaged,
        good,
    }
}

/// Made-up damage of kind `kind % KINDS` drawn onto a copy of a good photo, seeded: the
/// same photo, seed and kind give the same damage. It lands in the middle 70% of the
/// photo, where the item is, and covers 1-3% of it.
pub fn damaged_copy(photo: &RgbImage, seed: u64, kind: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ kind);
    let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let (w, h) = photo.dimensions();
    let side = f64::from(w.min(h));
    let mut out = photo.clone();
    let inner = |u: f64, n: u32| f64::from(n) * (0.15 + 0.7 * u);
    let (cx, cy) = (inner(unit(), w), inner(unit(), h));
    // Darker on bright surfaces, brighter on dark ones, as cracks, dents and marks show.
    let local = luma(photo.get_pixel(cx as u32, cy as u32));
    let shade = if local > 110.0 { 1.0 - CONTRAST * (0.5 + 0.3 * unit()) } else { 1.0 + CONTRAST * (0.8 + 0.4 * unit()) };
    match kind % KINDS {
        0 => {
            // A scratch: three joined strokes, 12-24% of the side long, 1-2 px wide at 224 px.
            let width = side / 224.0 * (1.0 + unit());
            let mut angle = unit() * std::f64::consts::TAU;
            let (mut x, mut y) = (cx, cy);
            let stroke = side * (0.04 + 0.04 * unit());
            for _ in 0..3 {
                let (nx, ny) = (x + stroke * angle.cos(), y + stroke * angle.sin());
                paint(&mut out, photo, |px, py| distance_to_segment((px, py), (x, y), (nx, ny)) <= width / 2.0, shade);
                (x, y) = (nx, ny);
                angle += (unit() - 0.5) * 1.2;
            }
        }
        1 => {
            // A patch of the photo from elsewhere, turned upside down, pasted here.
            let half = (side * (0.03 + 0.03 * unit())) as i64;
            let (sx, sy) = (inner(unit(), w) as i64, inner(unit(), h) as i64);
            let (cx, cy) = (cx as i64, cy as i64);
            for dy in -half..=half {
                for dx in -half..=half {
                    let (tx, ty, fx, fy) = (cx + dx, cy + dy, sx - dx, sy - dy);
                    if inside(tx, ty, w, h) && inside(fx, fy, w, h) {
                        out.put_pixel(tx as u32, ty as u32, *photo.get_pixel(fx as u32, fy as u32));
                    }
                }
            }
        }
        _ => {
            // A stain: an ellipse of changed brightness.
            let (rx, ry) = (side * (0.03 + 0.04 * unit()), side * (0.02 + 0.03 * unit()));
            let turn = unit() * std::f64::consts::PI;
            let (c, s) = (turn.cos(), turn.sin());
            paint(
                &mut out,
                photo,
                |px, py| {
                    let (dx, dy) = (px - cx, py - cy);
                    let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
                    (u / rx).powi(2) + (v / ry).powi(2) <= 1.0
                },
                0.5 + shade / 2.0,
            );
        }
    }
    out
}

fn luma(p: &Rgb<u8>) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

fn inside(x: i64, y: i64, w: u32, h: u32) -> bool {
    x >= 0 && y >= 0 && x < i64::from(w) && y < i64::from(h)
}

/// Scales the brightness of every pixel `hit` selects by `gain`.
fn paint(out: &mut RgbImage, photo: &RgbImage, hit: impl Fn(f64, f64) -> bool, gain: f64) {
    for (x, y, p) in photo.enumerate_pixels() {
        if hit(f64::from(x), f64::from(y)) {
            out.put_pixel(x, y, Rgb(p.0.map(|v| (f64::from(v) * gain).round().clamp(0.0, 255.0) as u8)));
        }
    }
}

fn distance_to_segment((px, py): (f64, f64), (ax, ay): (f64, f64), (bx, by): (f64, f64)) -> f64 {
    let (dx, dy) = (bx - ax, by - ay);
    let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy).max(1e-12)).clamp(0.0, 1.0);
    ((px - ax - t * dx).powi(2) + (py - ay - t * dy).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_known_answers() {
        assert_eq!(pairwise_auroc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(pairwise_auroc(&[1.0], &[2.0]), Some(0.0));
        // (2 > 1) + (2 = 2: half) + (0 < both) = 1.5 of 4 pairs.
        assert_eq!(pairwise_auroc(&[2.0, 0.0], &[1.0, 2.0]), Some(0.375));
        assert_eq!(pairwise_auroc(&[], &[1.0]), None);
    }

    #[test]
    fn the_best_is_kept_unless_a_cheaper_one_is_as_good() {
        use Candidate::*;
        assert_eq!(decide(&[(Padim, Some(0.80)), (PatchCore, Some(0.90)), (Ensemble, Some(0.85))]), Some(PatchCore));
        assert_eq!(decide(&[(Padim, Some(0.895)), (PatchCore, Some(0.90)), (Ensemble, Some(0.902))]), Some(Padim));
        assert_eq!(decide(&[(Padim, None), (Ensemble, Some(0.7))]), Some(Ensemble));
        assert_eq!(decide(&[(Padim, None)]), None);
    }

    #[test]
    fn the_reason_follows_the_winner() {
        use Candidate::*;
        let moving = report(&[(Padim, Some(0.70)), (PatchCore, Some(0.80)), (PatchCoreHandHeld, Some(0.92))], PatchCoreHandHeld, 30, 10);
        assert!(moving.why.contains("PatchCore with hand-held copies") && moving.why.contains("different places"), "{}", moving.why);
        assert!(moving.why.contains("best (0.92") && moving.why.contains("PaDiM 0.70") && moving.is_valid());
        let cheaper = report(&[(Padim, Some(0.905)), (Ensemble, Some(0.91))], Padim, 30, 10);
        assert!(cheaper.why.contains("as well as the best, Ensemble, for less work (0.905 against 0.910"), "{}", cheaper.why);
        let still = report(&[(Padim, Some(0.91)), (PatchCore, Some(0.85))], Padim, 30, 10);
        assert!(still.why.contains("same place"), "{}", still.why);
        // Within 0.01 of the other kind of method says nothing about the photos.
        let even =
            report(&[(PadimHandHeld, Some(0.771)), (PatchCoreHandHeld, Some(0.769)), (Ensemble, Some(0.777))], PadimHandHeld, 30, 10);
        assert!(even.why.contains("about equally well") && !even.why.contains("same place"), "{}", even.why);
        let forged = MethodReport { chosen: "<script>".into(), ..still.clone() };
        assert!(!forged.is_valid());
        let odd = MethodReport { scores: vec![("PaDiM".into(), f32::NAN)], ..still };
        assert!(!odd.is_valid());
    }

    #[test]
    fn made_up_damage_is_seeded_small_and_inside() {
        let photo = RgbImage::from_fn(224, 224, |x, y| Rgb([((x * 7 + y * 3) % 200 + 40) as u8; 3]));
        for kind in 0..KINDS {
            for seed in 0..20 {
                let a = damaged_copy(&photo, seed, kind);
                assert_eq!(a, damaged_copy(&photo, seed, kind));
                let changed: Vec<(u32, u32)> =
                    a.enumerate_pixels().filter(|(x, y, p)| *p != photo.get_pixel(*x, *y)).map(|(x, y, _)| (x, y)).collect();
                let share = changed.len() as f64 / (224.0 * 224.0);
                assert!((0.0005..0.06).contains(&share), "kind {kind} seed {seed}: {share}");
                // Around the middle of the photo, where the item is.
                let n = changed.len() as f64;
                let centre = changed.iter().fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + f64::from(x) / n, sy + f64::from(y) / n));
                assert!((15.0..209.0).contains(&centre.0) && (15.0..209.0).contains(&centre.1), "kind {kind} seed {seed}: {centre:?}");
            }
            assert_ne!(damaged_copy(&photo, 1, kind), damaged_copy(&photo, 2, kind));
        }
    }
}
