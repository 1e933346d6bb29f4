//! Product identification: which of the products on this device does a photo show?
//!
//! Each photo gets a global embedding from the feature maps the backbone computes for
//! inspection anyway (so identifying costs no extra network run). Each product keeps a
//! small gallery of its good training photos' embeddings and a distance bound learnt
//! from the gallery itself. A photo is the product whose gallery is nearest relative to
//! that gallery's bound, or an unknown product when even that one is beyond its bound.

use serde::{Deserialize, Serialize};

use super::embed::FeatureMap;
use super::EngineError;

/// Names how [`GlobalEmbedding::from_maps`] pools, so a gallery made another way (by a
/// later version) is recognised rather than compared with numbers that mean otherwise.
pub const EMBEDDING_KIND: &str = "mean-coarsest2-l2";
/// Most good photos a gallery keeps: enough to span a product's look (lighting, pose),
/// few enough that matching a photo against every product stays negligible.
pub const MAX_GALLERY: usize = 64;
/// Leave-one-out nearest-neighbour distances of the gallery's photos: this quantile...
const BOUND_QUANTILE: f32 = 0.9;
/// ...times this margin is how far a photo of the product may lie from its gallery.
/// Measured with 20-photo galleries of ELPV mono and poly cells and the MVTec 3D tire:
/// held-out good photos lie within 1.8 quantiles of their gallery, damaged ones within
/// 2.7, the other products beyond 2.7 and unrelated photos beyond 5.9.
pub const BOUND_MARGIN: f32 = 3.0;
/// A floor on the bound, for galleries of (nearly) identical photos.
const MIN_BOUND: f32 = 1e-3;
/// Embeddings are unit vectors: their distances lie in [0, 2].
const MAX_DISTANCE: f32 = 2.0;
/// The coarsest feature maps pooled (strides 16 and 8 here): adding stride 4, whose
/// fine texture many products share, told products apart no better.
pub const POOLED_MAPS: usize = 2;

/// One photo's global embedding: a unit vector.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalEmbedding(pub Vec<f32>);

impl GlobalEmbedding {
    /// The mean of each channel over the grid of the two coarsest feature maps (stride
    /// 16: what a thing is; stride 8: its parts and texture), each block L2-normalised on
    /// its own so neither outweighs the other for having more channels or larger values,
    /// then the whole scaled back to unit length. Measured against stride 16 alone, 8
    /// alone, 4+8+16, per-channel spread added, and max pooling (tests/identify.rs notes).
    pub fn from_maps(maps: &[FeatureMap]) -> Result<Self, EngineError> {
        let mut coarsest: Vec<&FeatureMap> = maps.iter().filter(|m| m.channels > 0 && m.height * m.width > 0).collect();
        if coarsest.is_empty() {
            return Err(EngineError::model("backbone", "no feature map to identify the product from"));
        }
        coarsest.sort_by_key(|m| m.height * m.width);
        let mut out = Vec::new();
        let mut blocks = 0usize;
        for map in coarsest.iter().take(POOLED_MAPS) {
            let mut mean = channel_means(map)?;
            blocks += usize::from(normalise(&mut mean));
            out.extend(mean);
        }
        let scale = 1.0 / (blocks.max(1) as f32).sqrt();
        out.iter_mut().for_each(|v| *v *= scale);
        Ok(GlobalEmbedding(out))
    }

    pub fn dims(&self) -> usize {
        self.0.len()
    }

    pub fn distance(&self, other: &[f32]) -> f32 {
        distance(&self.0, other)
    }
}

fn channel_means(map: &FeatureMap) -> Result<Vec<f32>, EngineError> {
    let cells = map.height * map.width;
    if map.data.len() != map.channels * cells {
        return Err(EngineError::model(&map.name, "the feature map's size does not match its shape"));
    }
    let mean: Vec<f32> =
        map.data.chunks_exact(cells).map(|c| (c.iter().map(|v| f64::from(*v)).sum::<f64>() / cells as f64) as f32).collect();
    if mean.iter().any(|v| !v.is_finite()) {
        return Err(EngineError::model(&map.name, "the feature map holds values that are not finite numbers"));
    }
    Ok(mean)
}

/// Scales to unit length; false (and left as zeros) when there is nothing to scale.
fn normalise(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm <= f64::from(f32::MIN_POSITIVE) {
        v.iter_mut().for_each(|x| *x = 0.0);
        return false;
    }
    v.iter_mut().for_each(|x| *x = (f64::from(*x) / norm) as f32);
    true
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

/// One product's good photos as embeddings, and how far a photo of it may lie from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Gallery {
    pub dims: usize,
    /// `len x dims`, row-major; unit vectors.
    pub embeddings: Vec<f32>,
    /// A photo farther than this from every embedding is not this product.
    pub bound: f32,
}

/// The gallery's settings as the profile header states them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryHeader {
    pub embedding: String,
    pub size: usize,
    pub dims: usize,
    pub bound: f32,
}

impl Gallery {
    /// The gallery of a product's good photos: at most [`MAX_GALLERY`] of them, chosen
    /// spread out (farthest-point order from the photo nearest the mean), and the bound:
    /// every photo's distance to its nearest *other* gallery photo (leave-one-out; for a
    /// photo left out of the gallery, its distance to the gallery), the
    /// [`BOUND_QUANTILE`] quantile of these, times [`BOUND_MARGIN`]. A photo of the
    /// product lies about as far from the gallery as its good photos lie from one
    /// another; the margin covers new lighting and damage.
    pub fn from_photos(photos: &[GlobalEmbedding]) -> Result<Gallery, EngineError> {
        let dims = photos.first().map_or(0, GlobalEmbedding::dims);
        if photos.len() < 2 || dims == 0 || photos.iter().any(|p| p.dims() != dims) {
            return Err(EngineError::Training("identification needs at least two good photos with embeddings of one size".into()));
        }
        let chosen = spread_out(photos, MAX_GALLERY);
        let mut loo: Vec<f32> = photos
            .iter()
            .enumerate()
            .map(|(i, p)| chosen.iter().filter(|&&j| j != i).map(|&j| p.distance(&photos[j].0)).fold(f32::INFINITY, f32::min))
            .collect();
        loo.sort_by(f32::total_cmp);
        let at = ((loo.len() - 1) as f32 * BOUND_QUANTILE).round() as usize;
        let bound = (loo[at] * BOUND_MARGIN).clamp(MIN_BOUND, MAX_DISTANCE);
        let embeddings = chosen.iter().flat_map(|&i| photos[i].0.iter().copied()).collect();
        Ok(Gallery { dims, embeddings, bound })
    }

    pub fn len(&self) -> usize {
        self.embeddings.len() / self.dims.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.embeddings.is_empty()
    }

    /// Distance from `embedding` to the nearest gallery photo.
    pub fn distance(&self, embedding: &GlobalEmbedding) -> f32 {
        if embedding.dims() != self.dims {
            return f32::INFINITY;
        }
        self.embeddings.chunks_exact(self.dims).map(|g| embedding.distance(g)).fold(f32::INFINITY, f32::min)
    }

    pub fn header(&self) -> GalleryHeader {
        GalleryHeader { embedding: EMBEDDING_KIND.into(), size: self.len(), dims: self.dims, bound: self.bound }
    }

    /// A gallery read from a file: the sizes, the bound and every number checked; a
    /// gallery of another embedding kind is `Ok(None)` (the product inspects as before,
    /// it is just not recognised until trained again).
    pub fn from_parts(header: &GalleryHeader, embeddings: Vec<f32>) -> Result<Option<Gallery>, String> {
        if header.embedding != EMBEDDING_KIND {
            return Ok(None);
        }
        if !(1..=MAX_GALLERY).contains(&header.size) || !(1..=4096).contains(&header.dims) {
            return Err(format!("implausible gallery sizes: {} photos of {} dims", header.size, header.dims));
        }
        if !(header.bound.is_finite() && header.bound > 0.0 && header.bound <= MAX_DISTANCE) {
            return Err("the gallery's distance bound is not valid".into());
        }
        if embeddings.len() != header.size * header.dims || embeddings.iter().any(|v| !v.is_finite() || v.abs() > 1.0 + 1e-3) {
            return Err("the gallery's embeddings are not valid".into());
        }
        Ok(Some(Gallery { dims: header.dims, embeddings, bound: header.bound }))
    }
}

/// Indices of at most `k` photos, spread out: first the one nearest the mean, then each
/// time the one farthest from those chosen (a greedy k-centre cover), in that order.
fn spread_out(photos: &[GlobalEmbedding], k: usize) -> Vec<usize> {
    if photos.len() <= k {
        return (0..photos.len()).collect();
    }
    let dims = photos[0].dims();
    let mut mean = vec![0.0f32; dims];
    for p in photos {
        mean.iter_mut().zip(&p.0).for_each(|(m, v)| *m += v / photos.len() as f32);
    }
    let first = (0..photos.len()).min_by(|&a, &b| photos[a].distance(&mean).total_cmp(&photos[b].distance(&mean))).unwrap_or(0);
    let mut chosen = vec![first];
    let mut nearest: Vec<f32> = photos.iter().map(|p| p.distance(&photos[first].0)).collect();
    while chosen.len() < k {
        let Some(next) = (0..photos.len()).max_by(|&a, &b| nearest[a].total_cmp(&nearest[b])) else { break };
        chosen.push(next);
        for (n, p) in nearest.iter_mut().zip(photos) {
            *n = n.min(p.distance(&photos[next].0));
        }
    }
    chosen
}

/// The product a photo was matched to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Index into the galleries given to [`identify`].
    pub index: usize,
    /// Distance to that product's nearest gallery photo.
    pub distance: f32,
    /// In [0, 1]; see [`identify`].
    pub confidence: f32,
}

/// A product that was considered but not chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub index: usize,
    pub distance: f32,
    /// Its distance over its bound: 1 or more means "not this product".
    pub relative: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Identification {
    /// None: the photo is none of the products (an unknown product).
    pub best: Option<Match>,
    /// The next-nearest product; when `best` is None, the nearest one (which was too far).
    pub runner_up: Option<Candidate>,
}

/// Which product `embedding` shows. Products are ranked by relative distance r = d / bound
/// (each gallery's bound puts products that vary a lot and products that vary little on
/// one scale). The nearest, r1, is the product when r1 <= 1; otherwise the photo is an
/// unknown product. Confidence = 1 - r1 / min(r2, 1), with r2 the runner-up's relative
/// distance (infinite without one): a ratio test against the runner-up, or against the
/// bound when the runner-up lies beyond its own bound. It is 1 for a photo on its gallery
/// with no rival, falls to 0 as the photo nears its bound or as the runner-up comes as
/// close; always in [0, 1]. A `None` gallery (a product without one) is never chosen.
pub fn identify(galleries: &[Option<&Gallery>], embedding: &GlobalEmbedding) -> Identification {
    let pairs: Vec<Option<(&Gallery, &GlobalEmbedding)>> = galleries.iter().map(|g| g.map(|g| (g, embedding))).collect();
    identify_each(&pairs)
}

/// [`identify`] where each product's photo embedding may differ: products trained at
/// another input size or with brightness evened see the photo through their own
/// preprocessing, and the photo is embedded once per such setting.
pub fn identify_each(candidates: &[Option<(&Gallery, &GlobalEmbedding)>]) -> Identification {
    let mut ranked: Vec<Candidate> = candidates
        .iter()
        .enumerate()
        .filter_map(|(index, c)| {
            let (g, embedding) = (*c)?;
            let distance = g.distance(embedding);
            distance.is_finite().then(|| Candidate { index, distance, relative: distance / g.bound })
        })
        .collect();
    ranked.sort_by(|a, b| a.relative.total_cmp(&b.relative).then(a.index.cmp(&b.index)));
    let Some(first) = ranked.first().copied() else { return Identification::default() };
    let second = ranked.get(1).copied();
    if first.relative > 1.0 {
        return Identification { best: None, runner_up: Some(first) };
    }
    let against = second.map_or(1.0, |s| s.relative.min(1.0));
    let confidence = if against > 0.0 { (1.0 - first.relative / against).clamp(0.0, 1.0) } else { 0.0 };
    Identification { best: Some(Match { index: first.index, distance: first.distance, confidence }), runner_up: second }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> GlobalEmbedding {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        GlobalEmbedding(v.iter().map(|x| x / n).collect())
    }

    fn gallery(rows: &[[f32; 2]], bound: f32) -> Gallery {
        Gallery { dims: 2, embeddings: rows.iter().flatten().copied().collect(), bound }
    }

    #[test]
    fn pools_channel_means_of_the_two_coarsest_maps_into_a_unit_vector() {
        let map = |name: &str, side: usize, data: Vec<f32>| FeatureMap { name: name.into(), channels: 2, height: side, width: side, data };
        // The finest map (4x4) is left out; the 1x1 map's means are 3, 4, the 2x2 map's 1, 0.
        let maps =
            [map("s4", 4, vec![9.0; 32]), map("s8", 2, vec![1.0, 1.0, 1.0, 1.0, 2.0, -2.0, 2.0, -2.0]), map("s16", 1, vec![3.0, 4.0])];
        let e = GlobalEmbedding::from_maps(&maps).unwrap();
        // Two unit blocks, coarsest first, scaled by 1/sqrt(2).
        let s = 1.0 / 2f32.sqrt();
        let want = [0.6 * s, 0.8 * s, s, 0.0];
        assert!(e.0.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", e.0);
        assert!(GlobalEmbedding::from_maps(&[]).is_err());
        // A block of zeros (a blank map) stays zero and does not count.
        let blank = GlobalEmbedding::from_maps(&[map("s16", 1, vec![0.0, 0.0]), map("s8", 2, vec![1.0; 8])]).unwrap();
        assert!(blank.0.iter().zip([0.0, 0.0, s, s]).all(|(a, b)| (a - b).abs() < 1e-6), "{blank:?}");
    }

    #[test]
    fn the_bound_is_a_high_quantile_of_leave_one_out_distances_times_the_margin() {
        // Four photos on a line, 0.1 apart, then one 0.3 farther: leave-one-out
        // distances 0.1, 0.1, 0.1, 0.1, 0.3; the 90% quantile (index 4 of 0..4) is 0.3.
        let photos: Vec<GlobalEmbedding> = [0.0, 0.1, 0.2, 0.3, 0.6].iter().map(|x| GlobalEmbedding(vec![*x, 0.0])).collect();
        let g = Gallery::from_photos(&photos).unwrap();
        assert_eq!(g.len(), 5);
        assert!((g.bound - 0.3 * BOUND_MARGIN).abs() < 1e-5, "{}", g.bound);
        assert!(Gallery::from_photos(&photos[..1]).is_err());
    }

    #[test]
    fn a_large_gallery_keeps_photos_spread_out() {
        // 100 photos bunched near (1, 0) and one far off: the far one is kept.
        let mut photos: Vec<GlobalEmbedding> = (0..100).map(|i| unit(&[1.0, i as f32 * 1e-4])).collect();
        photos.push(unit(&[0.0, 1.0]));
        let g = Gallery::from_photos(&photos).unwrap();
        assert_eq!(g.len(), MAX_GALLERY);
        assert!(g.distance(&unit(&[0.0, 1.0])) < 1e-6);
        assert_eq!(spread_out(&photos, 2)[1], 100);
    }

    #[test]
    fn identifies_the_nearest_product_relative_to_its_bound() {
        let a = gallery(&[[1.0, 0.0]], 0.5);
        let b = gallery(&[[0.0, 1.0]], 0.5);
        // On a's photo: r1 = 0, confidence 1; b is the runner-up at distance sqrt(2).
        let id = identify(&[Some(&a), Some(&b)], &unit(&[1.0, 0.0]));
        let best = id.best.unwrap();
        assert_eq!((best.index, best.distance, best.confidence), (0, 0.0, 1.0));
        assert_eq!(id.runner_up.unwrap().index, 1);
        assert!((id.runner_up.unwrap().distance - 2f32.sqrt()).abs() < 1e-6);
        // Distance 0.25 from a (r1 = 0.5), b beyond its bound: confidence 1 - 0.5 = 0.5.
        let near_a = GlobalEmbedding(vec![1.0, 0.25]);
        let id = identify(&[Some(&a), Some(&b)], &near_a);
        assert!((id.best.unwrap().confidence - 0.5).abs() < 1e-6, "{id:?}");
        // Halfway between (both within their bounds): r1 = r2, no confidence at all.
        let both = gallery(&[[1.0, 0.0]], 2.0);
        let other = gallery(&[[0.0, 1.0]], 2.0);
        let id = identify(&[Some(&both), Some(&other)], &unit(&[1.0, 1.0]));
        assert_eq!(id.best.unwrap().confidence, 0.0);
    }

    #[test]
    fn a_photo_beyond_every_bound_is_an_unknown_product() {
        let a = gallery(&[[1.0, 0.0]], 0.5);
        let b = gallery(&[[0.0, 1.0]], 0.5);
        let id = identify(&[Some(&a), Some(&b)], &unit(&[1.0, 1.2]));
        assert_eq!(id.best, None);
        // The nearest, too far, is the runner-up: b (distance about 0.68, to a 0.85).
        assert_eq!(id.runner_up.unwrap().index, 1);
        assert!(id.runner_up.unwrap().relative > 1.0);
        // No gallery, or only products without one: nothing to match.
        assert_eq!(identify(&[], &unit(&[1.0, 0.0])), Identification::default());
        assert_eq!(identify(&[None], &unit(&[1.0, 0.0])), Identification::default());
    }

    #[test]
    fn a_tight_product_loses_to_a_loose_one_at_the_same_distance() {
        // Equal raw distances, but a's photos vary little: the photo is b.
        let a = gallery(&[[1.0, 0.0]], 0.1);
        let b = gallery(&[[0.0, 1.0]], 1.0);
        let id = identify(&[Some(&a), Some(&b)], &unit(&[1.0, 1.0]));
        assert_eq!(id.best.unwrap().index, 1);
        // r1 = 0.765 with a beyond its bound: confidence 1 - 0.765.
        assert!((id.best.unwrap().confidence - (1.0 - 0.765)).abs() < 1e-3, "{id:?}");
    }

    #[test]
    fn reading_refuses_damaged_galleries_and_passes_over_other_kinds() {
        let header = GalleryHeader { embedding: EMBEDDING_KIND.into(), size: 1, dims: 2, bound: 0.5 };
        assert!(Gallery::from_parts(&header, vec![0.6, 0.8]).unwrap().is_some());
        assert!(Gallery::from_parts(&header, vec![0.6]).is_err());
        assert!(Gallery::from_parts(&header, vec![f32::NAN, 0.8]).is_err());
        assert!(Gallery::from_parts(&GalleryHeader { bound: f32::INFINITY, ..header.clone() }, vec![0.6, 0.8]).is_err());
        assert!(Gallery::from_parts(&GalleryHeader { size: MAX_GALLERY + 1, ..header.clone() }, vec![]).is_err());
        let later = GalleryHeader { embedding: "something-else".into(), ..header };
        assert_eq!(Gallery::from_parts(&later, vec![]), Ok(None));
    }
}
