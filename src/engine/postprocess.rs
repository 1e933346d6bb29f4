//! Patch scores -> anomaly map -> image score, verdict and heatmap.

use serde::{Deserialize, Serialize};

use super::embed::bilinear_into;

/// DESIGN.md: sigma 4 px at a 224 px input, scaled with the input size.
pub fn blur_sigma(input_size: u32) -> f32 {
    4.0 * input_size as f32 / 224.0
}

/// A square anomaly map at the backbone's input resolution, in raw score units.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyMap {
    pub size: usize,
    pub values: Vec<f32>,
}

impl AnomalyMap {
    /// Bilinear upsampling of the patch grid to `size` x `size`, then a Gaussian blur.
    pub fn from_patch_scores(scores: &[f32], grid_h: usize, grid_w: usize, size: usize, sigma: f32) -> Self {
        let mut values = vec![0f32; size * size];
        bilinear_into(scores, grid_h, grid_w, &mut values, size, size);
        gaussian_blur(&mut values, size, size, sigma);
        AnomalyMap { size, values }
    }

    /// The image score: the map's maximum.
    pub fn max(&self) -> f32 {
        self.values.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    pub fn min(&self) -> f32 {
        self.values.iter().copied().fold(f32::INFINITY, f32::min)
    }
}

/// Separable Gaussian blur, edges clamped, kernel truncated at 4 sigma.
pub fn gaussian_blur(values: &mut [f32], h: usize, w: usize, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let radius = (4.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let mut tmp = vec![0f32; values.len()];
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = kernel.iter().enumerate().map(|(i, k)| k * values[y * w + clamp(x as isize + i as isize - radius, w)]).sum();
        }
    }
    for y in 0..h {
        for x in 0..w {
            values[y * w + x] = kernel.iter().enumerate().map(|(i, k)| k * tmp[clamp(y as isize + i as isize - radius, h) * w + x]).sum();
        }
    }
}

/// How a profile turns raw scores into a verdict and the 0..1 scale users see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Raw image-score threshold: at or above it an item is damaged.
    pub threshold: f32,
    /// Raw map values seen on calibration images; spans the normalised scale.
    pub min: f32,
    pub max: f32,
    /// How the threshold was chosen, in words a user reads on screen.
    pub method: String,
    /// Scores from here up to the threshold go to a person (CHECK). None in profiles
    /// written before the band existed, or when nothing sits between OK and DAMAGED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckBand>,
    /// The share of good items expected to be flagged (CHECK or DAMAGED), from the good
    /// calibration photos' scores ([`crate::engine::calibration_stats::expected_flagged`]);
    /// the inspection log compares what it sees with it. None in older profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_flagged: Option<f32>,
}

/// The lower edge of the CHECK band and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckBand {
    pub from: f32,
    /// In words a user reads on screen.
    pub why: String,
}

/// The three verdicts: OK, a person should look (CHECK), or DAMAGED; ordered from
/// best to worst, so the worst of several views is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Ok = 0,
    Check = 1,
    Damaged = 2,
}

impl Band {
    /// As `data-verdict` and the CLI's JSON write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Ok => "ok",
            Band::Check => "check",
            Band::Damaged => "damaged",
        }
    }

    /// The band [`Band::as_str`] names.
    pub fn parse(name: &str) -> Option<Band> {
        [Band::Ok, Band::Check, Band::Damaged].into_iter().find(|b| b.as_str() == name)
    }

    /// As a person reads it.
    pub fn label(self) -> &'static str {
        match self {
            Band::Ok => "OK",
            Band::Check => "CHECK",
            Band::Damaged => "DAMAGED",
        }
    }
}

impl Calibration {
    /// The verdict for an image score: DAMAGED at or above the threshold, CHECK from the
    /// band's lower edge, OK below.
    pub fn band(&self, image_score: f32) -> Band {
        if self.is_damaged(image_score) {
            Band::Damaged
        } else if self.check.as_ref().is_some_and(|c| image_score >= c.from) {
            Band::Check
        } else {
            Band::Ok
        }
    }

    /// anomalib's convention: the threshold lands on 0.5, clamped to [0, 1].
    pub fn normalise(&self, raw: f32) -> f32 {
        let span = (self.max - self.min).max(f32::EPSILON);
        ((raw - self.threshold) / span + 0.5).clamp(0.0, 1.0)
    }

    pub fn is_damaged(&self, image_score: f32) -> bool {
        image_score >= self.threshold
    }
}

/// RGBA heatmap of a normalised map: turbo colours, transparent where the item looks
/// normal and increasingly opaque towards and past the threshold, so the photo stays
/// readable and damage stands out.
pub fn heatmap_rgba(normalised: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(normalised.len() * 4);
    for &v in normalised {
        let c = colorous::TURBO.eval_continuous(v.clamp(0.0, 1.0) as f64);
        let alpha = ((v - 0.15) / 0.35).clamp(0.0, 1.0) * 0.75;
        out.extend_from_slice(&[c.r, c.g, c.b, (alpha * 255.0).round() as u8]);
    }
    out
}

/// The border of the damaged region (normalised score at least 0.5) of a square map:
/// 1 where a pixel is in the region and a 4-neighbour or the map's edge is not.
pub fn region_outline(normalised: &[f32], size: usize) -> Vec<u8> {
    let inside = |x: isize, y: isize| {
        x >= 0 && y >= 0 && (x as usize) < size && (y as usize) < size && normalised[y as usize * size + x as usize] >= 0.5
    };
    let mut out = vec![0u8; size * size];
    for y in 0..size as isize {
        for x in 0..size as isize {
            if inside(x, y) && !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1)) {
                out[y as usize * size + x as usize] = 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outline_is_the_border_of_the_region() {
        // A 3x3 block in a 5x5 map: its 8 border pixels, not its centre, not outside.
        let mut map = vec![0.0f32; 25];
        for y in 1..4 {
            for x in 1..4 {
                map[y * 5 + x] = 0.7;
            }
        }
        let outline = region_outline(&map, 5);
        assert_eq!(outline.iter().filter(|v| **v == 1).count(), 8);
        assert_eq!(outline[2 * 5 + 2], 0);
        assert_eq!(outline[0], 0);
        // A region touching the edge is closed by it.
        assert_eq!(region_outline(&[0.9; 4], 2), vec![1; 4]);
    }

    #[test]
    fn blur_preserves_mass_of_a_constant_and_spreads_a_peak() {
        let mut flat = vec![3.0f32; 100];
        gaussian_blur(&mut flat, 10, 10, 2.0);
        assert!(flat.iter().all(|v| (v - 3.0).abs() < 1e-5));
        let mut peak = vec![0.0f32; 41 * 41];
        peak[20 * 41 + 20] = 1.0;
        gaussian_blur(&mut peak, 41, 41, 2.0);
        let total: f32 = peak.iter().sum();
        assert!((total - 1.0).abs() < 1e-4);
        // The 2-D Gaussian's centre value is 1 / (2 pi sigma^2).
        assert!((peak[20 * 41 + 20] - 1.0 / (std::f32::consts::TAU * 4.0)).abs() < 2e-3);
        assert!(peak[20 * 41 + 21] < peak[20 * 41 + 20]);
    }

    #[test]
    fn map_peak_sits_where_the_patch_score_is() {
        let mut scores = vec![0.0f32; 16];
        scores[4 + 2] = 10.0; // row 1, column 2 of 4
        let map = AnomalyMap::from_patch_scores(&scores, 4, 4, 32, 1.0);
        let argmax = map.values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        let (y, x) = (argmax / 32, argmax % 32);
        assert!((8..16).contains(&y) && (16..24).contains(&x), "peak at {y},{x}");
    }

    #[test]
    fn threshold_normalises_to_one_half() {
        assert_eq!(Band::parse("check"), Some(Band::Check));
        assert_eq!(Band::parse("CHECK"), None);
        let c = Calibration { threshold: 10.0, min: 2.0, max: 14.0, method: String::new(), check: None, expected_flagged: None };
        assert_eq!(c.normalise(10.0), 0.5);
        assert_eq!(c.normalise(-100.0), 0.0);
        assert_eq!(c.normalise(100.0), 1.0);
        assert!(c.is_damaged(10.0) && !c.is_damaged(9.99));
    }

    #[test]
    fn three_bands_split_at_the_check_edge_and_the_threshold() {
        let mut c = Calibration { threshold: 10.0, min: 2.0, max: 14.0, method: String::new(), check: None, expected_flagged: None };
        assert_eq!((c.band(9.99), c.band(10.0)), (Band::Ok, Band::Damaged));
        c.check = Some(CheckBand { from: 8.0, why: String::new() });
        assert_eq!([c.band(7.99), c.band(8.0), c.band(9.99), c.band(10.0)], [Band::Ok, Band::Check, Band::Check, Band::Damaged]);
        assert_eq!([Band::Ok.as_str(), Band::Check.as_str(), Band::Damaged.as_str()], ["ok", "check", "damaged"]);
        assert!(Band::Ok < Band::Check && Band::Check < Band::Damaged, "worse verdicts order higher");
    }

    #[test]
    fn heatmap_is_clear_where_normal_and_opaque_where_damaged() {
        let rgba = heatmap_rgba(&[0.0, 0.9]);
        assert_eq!(rgba[3], 0);
        assert!(rgba[7] > 150);
    }
}
