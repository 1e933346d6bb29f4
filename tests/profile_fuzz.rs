//! Fuzzing the profile reader: mutated real profiles (bit flips, cuts, splices, header
//! numbers changed) never panic, and reading one never allocates much beyond the
//! file's own size, so a hostile header cannot make the app reserve gigabytes.
//!
//! CI runs a short pass; `cargo xtask fuzz-profile` runs a long one (README).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use damagelens::engine::chooser::Candidate;
use damagelens::engine::embed::{gaussian_projection, EmbedConfig, Embedder};
use damagelens::engine::identify::Gallery;
use damagelens::engine::padim::PadimModel;
use damagelens::engine::patchcore::PatchCoreModel;
use damagelens::engine::postprocess::Calibration;
use damagelens::engine::profile::{AnomalyModel, BackboneId, Detector, MapScale, Profile};
use proptest::prelude::*;

/// Counts live heap bytes and the peak since the last reset.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap growth while reading `bytes` as a profile. Only valid when nothing else
/// allocates meanwhile, so the tests in this file run one at a time (a lock).
fn peak_while_reading(bytes: &[u8]) -> usize {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let _ = Profile::from_bytes("fuzz.dlprofile", bytes, None);
    PEAK.load(Relaxed).saturating_sub(before)
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A small two-detector profile with a damage head: every tensor kind and both header layouts' fields.
fn seed_profile() -> Vec<u8> {
    let embed = EmbedConfig { layers: vec!["feat_s8".into()], dims: Some(3), seed: 1, neighbourhood: 1 };
    let padim = Detector {
        embedder: Embedder::from_parts(embed.clone(), 5, gaussian_projection(5, 3, 1)).unwrap(),
        grid: (2, 2),
        model: AnomalyModel::Padim(PadimModel { height: 2, width: 2, dims: 3, mean: vec![0.25; 12], inv_chol: vec![1.0; 24] }),
        scale: MapScale { mean: 1.0, std: 2.0 },
    };
    let patchcore = Detector {
        embedder: Embedder::from_parts(EmbedConfig { dims: None, neighbourhood: 3, ..embed }, 3, Vec::new()).unwrap(),
        grid: (2, 2),
        model: AnomalyModel::PatchCore(PatchCoreModel { dims: 3, bank: vec![0.5; 15] }),
        scale: MapScale { mean: 0.1, std: 0.3 },
    };
    Profile {
        name: "fuzz".into(),
        backbone: BackboneId { name: "efficientnet_lite0".into(), sha256: "ab".repeat(32), input_size: 224 },
        detectors: vec![padim, patchcore],
        even_brightness: true,
        augment: 3,
        capture: Some(damagelens::engine::capture::CaptureReference { sharpness: 0.5, brightness: 120.0, glare: 0.01 }),
        calibration: Calibration {
            threshold: 3.0,
            min: 1.0,
            max: 5.0,
            method: "manual".into(),
            check: Some(damagelens::engine::postprocess::CheckBand { from: 2.5, why: "manual".into() }),
            expected_flagged: Some(0.07),
        },
        training_images: 12,
        gallery: Some(Gallery { dims: 3, embeddings: vec![0.6, 0.8, 0.0, 0.0, 0.0, 1.0], bound: 0.5 }),
        origin: Some(damagelens::engine::profile::Origin { product: "p1".into(), version: 2, trained_ms: 1.7e12 }),
        method: Some(damagelens::engine::chooser::report(
            &[(Candidate::Padim, Some(0.8)), (Candidate::Ensemble, Some(0.9))],
            Candidate::Ensemble,
            30,
            10,
        )),
        damage_head: Some(damagelens::engine::profile::LearntHead {
            head: damagelens::engine::damage_head::DamageHead {
                dims: 3,
                mean: vec![0.1; 3],
                scale: vec![1.0; 3],
                weights: vec![0.5, -0.5, 1.0],
                bias: -2.0,
            },
            weight: 0.5,
            photos: 4,
        }),
    }
    .to_bytes()
    .unwrap()
}

/// The reader may hold the file's tensors once more as numbers, plus bookkeeping.
fn allowed(len: usize) -> usize {
    2 * len + 64 * 1024
}

fn cases() -> u32 {
    std::env::var("DAMAGELENS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

/// Mutations that reach past the safetensors framing into the header and tensors.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Cut(prop::sample::Index),
    /// Overwrite a digit run in the JSON header with a large number.
    BigNumber(prop::sample::Index, u64),
    Splice(prop::sample::Index, prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, v)| Mutation::Flip(i, v)),
        any::<prop::sample::Index>().prop_map(Mutation::Cut),
        (any::<prop::sample::Index>(), any::<u64>()).prop_map(|(i, v)| Mutation::BigNumber(i, v)),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1usize..64).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(at, v) => {
            let i = at.index(bytes.len());
            bytes[i] ^= v;
        }
        Mutation::Cut(at) => bytes.truncate(at.index(bytes.len())),
        Mutation::BigNumber(at, v) => {
            let digits: Vec<usize> = (0..bytes.len()).filter(|i| bytes[*i].is_ascii_digit()).collect();
            if let Some(&start) = digits.get(at.index(digits.len().max(1))) {
                let text = v.to_string();
                for (k, c) in text.bytes().enumerate() {
                    if let Some(b) = bytes.get_mut(start + k).filter(|b| b.is_ascii_digit()) {
                        *b = c;
                    }
                }
            }
        }
        Mutation::Splice(from, to, n) => {
            let (a, b) = (from.index(bytes.len()), to.index(bytes.len()));
            let chunk: Vec<u8> = bytes[a..(a + n).min(bytes.len())].to_vec();
            let end = (b + chunk.len()).min(bytes.len());
            bytes[b..end].copy_from_slice(&chunk[..end - b]);
        }
    }
}

#[test]
fn the_seed_profile_reads_back_within_the_allocation_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = seed_profile();
    assert!(Profile::from_bytes("seed", &bytes, None).is_ok());
    let peak = peak_while_reading(&bytes);
    assert!(peak > 0 && peak <= allowed(bytes.len()), "peak {peak} for a {} byte file", bytes.len());
}

#[test]
fn a_header_claiming_a_huge_bank_allocates_nothing_for_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The header's own length field (the first 8 bytes) set to ~1 EB: refused at once.
    let mut bytes = seed_profile();
    bytes[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let peak = peak_while_reading(&bytes);
    assert!(peak <= allowed(bytes.len()), "peak {peak}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn mutated_profiles_never_panic_nor_allocate_beyond_their_size(mutations in prop::collection::vec(mutation(), 1..6)) {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = seed_profile();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let peak = peak_while_reading(&bytes);
        prop_assert!(peak <= allowed(bytes.len()), "peak {} for a {} byte file", peak, bytes.len());
    }
}
