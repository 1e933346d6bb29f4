//! `damagelens identify`: which product each photo shows, among the profiles in a folder.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::identify::{identify_each, Gallery, GlobalEmbedding};
use crate::engine::inspector::Inspector;
use crate::engine::manifest::BackboneManifest;
use crate::engine::profile::Profile;

use super::{image_files, load_inspector, read_bounded, read_profile_file, CliResult};

#[derive(clap::Args)]
pub struct IdentifyArgs {
    /// Folder of profiles (.dlprofile files): the products on this device.
    #[arg(long)]
    profiles: PathBuf,
    /// Photos (files or folders) to identify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// How a photo is preprocessed before its embedding: products trained alike share it.
type Preprocessing = (u32, bool);

/// A product that can be recognised: its name and gallery, and how it sees photos.
struct Product {
    name: String,
    gallery: Gallery,
    preprocessing: Preprocessing,
}

pub fn run(backbone: &Path, args: &IdentifyArgs) -> CliResult {
    let json = std::fs::read_to_string(backbone).map_err(|e| format!("{}: {e}", backbone.display()))?;
    let manifest = BackboneManifest::from_json(&backbone.display().to_string(), &json).map_err(|e| e.to_string())?;
    let products = load_products(&args.profiles, &manifest)?;
    let mut inspectors: BTreeMap<u32, Inspector> = BTreeMap::new();
    for p in &products {
        if let Entry::Vacant(slot) = inspectors.entry(p.preprocessing.0) {
            slot.insert(load_inspector(backbone, Some(p.preprocessing.0))?);
        }
    }
    // A bad photo is named on stderr and the others go on, as with `inspect`.
    let files = image_files(&args.images)?;
    let mut failures = 0;
    for path in &files {
        let name = path.display().to_string();
        let embedded = read_bounded(path).and_then(|bytes| {
            let mut by_preprocessing: BTreeMap<Preprocessing, GlobalEmbedding> = BTreeMap::new();
            for p in &products {
                if let Entry::Vacant(slot) = by_preprocessing.entry(p.preprocessing) {
                    let (size, even) = p.preprocessing;
                    let (maps, _) = inspectors[&size].feature_maps(&name, &bytes, even).map_err(|e| e.to_string())?;
                    slot.insert(GlobalEmbedding::from_maps(&maps).map_err(|e| e.to_string())?);
                }
            }
            Ok(by_preprocessing)
        });
        match embedded {
            Ok(embeddings) => {
                let candidates: Vec<_> = products.iter().map(|p| Some((&p.gallery, &embeddings[&p.preprocessing]))).collect();
                let id = identify_each(&candidates);
                let product = id.best.map(|b| products[b.index].name.as_str());
                let runner_up = id.runner_up.map(|r| products[r.index].name.as_str());
                // Unknown: the distance to the nearest product, which was too far.
                let distance = id.best.map(|b| b.distance).or(id.runner_up.map(|r| r.distance));
                let confidence = id.best.map_or(0.0, |b| b.confidence);
                println!(
                    "{}",
                    serde_json::json!({
                        "path": name, "product": product, "confidence": confidence, "runner_up": runner_up, "distance": distance,
                    })
                );
            }
            Err(message) => {
                failures += 1;
                eprintln!("damagelens: {message}");
            }
        }
    }
    super::batch_outcome(files.len(), failures, "identify", "identified")
}

/// Every profile in `dir` that can recognise its product; the others are named with why.
fn load_products(dir: &Path, manifest: &BackboneManifest) -> CliResult<Vec<Product>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}. Give the folder that holds the .dlprofile files", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("dlprofile")))
        .collect();
    files.sort();
    let mut products = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let profile = read_profile_file(path)
            .and_then(|bytes| Profile::from_bytes(&name, &bytes, Some(&manifest.onnx_sha256)).map_err(|e| e.to_string()));
        match profile {
            Ok(Profile { gallery: Some(gallery), name, backbone, even_brightness, .. }) => {
                products.push(Product { name, gallery, preprocessing: (backbone.input_size, even_brightness) })
            }
            Ok(p) => eprintln!(
                "note: {name}: product {:?} has no identification gallery (trained before identification); skipped. Train it again to have it recognised",
                p.name
            ),
            Err(message) => eprintln!("note: {message}; skipped"),
        }
    }
    if products.is_empty() {
        return Err(format!(
            "{}: no profile there can recognise its product ({} .dlprofile file(s), see above). Train the products with `damagelens train`",
            dir.display(),
            files.len()
        ));
    }
    Ok(products)
}
