//! `damagelens handheld --dataset DIR --out DIR --seed N`: a hand-held copy of a dataset
//! (see [`crate::engine::handheld`]) to measure what shaky shots cost.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{progress, read_bounded, CliResult};
use crate::engine::handheld::HandHeld;
use crate::engine::image_ops::decode_rgb;
use crate::eval::dataset::load_dir;

#[derive(clap::Args)]
pub struct HandHeldArgs {
    /// Dataset folder (MVTec AD, BTAD or plain layout); masks move with their photos.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Where the copy goes (created; files there are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest shift, as a share of the photo's width and height.
    #[arg(long, default_value_t = 0.08)]
    pub shift: f64,
    /// Largest turn in degrees.
    #[arg(long, default_value_t = 10.0)]
    pub turn: f64,
    /// Largest zoom: the scale is 1 ± this.
    #[arg(long, default_value_t = 0.08)]
    pub scale: f64,
    /// Largest change of light: brightness times 1 ± this.
    #[arg(long, default_value_t = 0.15)]
    pub light: f64,
}

pub fn run(args: &HandHeldArgs) -> CliResult {
    let root = &args.dataset;
    let dataset = load_dir(root, None).map_err(|e| e.to_string())?;
    let hand = HandHeld { shift: args.shift, turn_deg: args.turn, scale: args.scale, light: args.light };
    // (photo, its mask) relative to the root.
    let photos: Vec<(String, Option<String>)> = dataset
        .train
        .iter()
        .map(|p| (p.clone(), None))
        .chain(dataset.validation.iter().chain(&dataset.test).map(|s| (s.path.clone(), s.mask.clone())))
        .collect();
    let mut written = HashSet::new();
    let mut log = String::from("file,dx_px,dy_px,angle_deg,scale,brightness_gain\n");
    let bar = progress(photos.len(), "moving photos");
    for (photo, mask) in &photos {
        let rgb = decode_rgb(photo, &read_bounded(&root.join(photo))?).map_err(|e| e.to_string())?;
        let shot = hand.shot(args.seed, photo, rgb.dimensions());
        save(&shot.photo(&rgb), &args.out.join(photo))?;
        written.insert(root.join(photo));
        let p = shot.pose;
        log.push_str(&format!("{photo},{:.3},{:.3},{:.4},{:.5},{:.4}\n", p.dx, p.dy, p.angle_deg, p.scale, shot.gain));
        if let Some(mask) = mask {
            let grey =
                image::DynamicImage::ImageRgb8(decode_rgb(mask, &read_bounded(&root.join(mask))?).map_err(|e| e.to_string())?).to_luma8();
            if grey.dimensions() != rgb.dimensions() {
                return Err(format!("{mask}: the mask is not the size of its photo {photo}; it cannot follow the photo"));
            }
            save(&shot.mask(&grey), &args.out.join(mask))?;
            written.insert(root.join(mask));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Everything else (licences, notes, masks of no photo) is copied as it is.
    copy_rest(root, &args.out, &written)?;
    let log_path = args.out.with_extension("shots.csv");
    std::fs::write(&log_path, log).map_err(|e| format!("{}: {e}", log_path.display()))?;
    eprintln!(
        "{}: {} photos moved (seed {}, shift {}, turn {} deg, scale {}, light {}); shots listed in {}",
        args.out.display(),
        photos.len(),
        args.seed,
        args.shift,
        args.turn,
        args.scale,
        args.light,
        log_path.display()
    );
    Ok(())
}

/// Saves in the format the file name says (a JPEG stays a JPEG).
fn save<P: image::PixelWithColorType>(img: &image::ImageBuffer<P, Vec<P::Subpixel>>, path: &Path) -> CliResult
where
    [P::Subpixel]: image::EncodableLayout,
{
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    img.save(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy_rest(from: &Path, to: &Path, written: &HashSet<PathBuf>) -> CliResult {
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?.flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_rest(&path, &target, written)?;
        } else if !written.contains(&path) {
            std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
            std::fs::copy(&path, &target).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}
