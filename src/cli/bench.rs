//! `damagelens bench`: how fast the native engine is on this machine, as JSON, for
//! `cargo xtask bench` to set beside onnxruntime on the same backbone and input.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{load_inspector, CliResult};
use crate::engine::clock::{now_ms, StageTimes};
use crate::engine::inspector::Trainer;
use crate::engine::settings::TrainSettings;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Timed runs of each measurement, after one warm-up run.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Where to write the preprocessed input tensor (raw little-endian f32, 1x3xSxS), so
    /// another runtime can be timed on exactly the same input.
    #[arg(long)]
    tensor_out: Option<PathBuf>,
    /// Good photos: the first ten train a PaDiM profile, the first one is timed.
    #[arg(required = true, num_args = 10..)]
    images: Vec<PathBuf>,
}

/// Median, fastest and slowest of a series, in milliseconds.
#[derive(Serialize)]
pub struct Series {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Series {
    pub fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Series { median, min: ms.first().copied().unwrap_or(f64::NAN), max: ms.last().copied().unwrap_or(f64::NAN), runs: n }
    }
}

#[derive(Serialize)]
struct Report {
    /// tract's optimised plan on one preprocessed image, feature maps out.
    backbone_ms: Series,
    /// Photo bytes to verdict and heatmap (decode, preprocess, backbone, PaDiM, map).
    inspect_ms: Series,
    /// The median inspection's stages.
    stages: StageTimes,
    threads: usize,
}

fn timed(runs: usize, mut f: impl FnMut() -> CliResult<()>) -> CliResult<Vec<f64>> {
    f()?;
    (0..runs)
        .map(|_| {
            let start = now_ms();
            f()?;
            Ok(now_ms() - start)
        })
        .collect()
}

pub fn run(backbone: &Path, args: &BenchArgs) -> CliResult {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let inspector = load_inspector(backbone, None)?;
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut trainer = Trainer::new(&inspector, &TrainSettings::padim()).map_err(|e| e.to_string())?;
    for path in args.images.iter().take(10) {
        trainer.add(&path.display().to_string(), &read(path)?).map_err(|e| e.to_string())?;
    }
    let profile = trainer.finish("bench").map_err(|e| e.to_string())?;

    let first = &args.images[0];
    let name = first.display().to_string();
    let bytes = read(first)?;
    let (tensor, _) = inspector.preprocess().photo(&name, &bytes, false).map_err(|e| e.to_string())?;
    if let Some(out) = &args.tensor_out {
        std::fs::write(out, bytemuck::cast_slice::<f32, u8>(&tensor)).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let backbone_ms = timed(args.runs, || inspector.backbone().run(tensor.clone()).map(|_| ()).map_err(|e| e.to_string()))?;
    let mut stages = Vec::with_capacity(args.runs + 1);
    let inspect_ms = timed(args.runs, || {
        stages.push(inspector.inspect_timed(&profile, &name, &bytes).map_err(|e| e.to_string())?.1);
        Ok(())
    })?;
    stages.sort_by(|a, b| a.total().total_cmp(&b.total()));
    let report =
        Report { backbone_ms: Series::of(backbone_ms), inspect_ms: Series::of(inspect_ms), stages: stages[stages.len() / 2], threads: 1 };
    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    Ok(())
}
