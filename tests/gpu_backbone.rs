//! The GPU executor built from ONNX files, against tract on the same files.
//!
//! Needs a Vulkan adapter (lavapipe without a GPU; see `gpu_kernels.rs`). The real
//! backbone must agree with tract on real photos within a relative error of 1e-3 per
//! feature map (the largest difference over the map's largest magnitude).

mod common;

use std::sync::OnceLock;

use common::onnx::{float, int, ints, text, Graph};
use damagelens::engine::backbone::Backbone;
use damagelens::engine::embed::FeatureMap;
use damagelens::engine::gpu::network::{plan, Step};
use damagelens::engine::gpu::{Activation, ConvOps, GpuContext, GpuError, GpuNetwork};
use damagelens::engine::image_ops::decode_rgb;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

struct Gpu {
    ctx: GpuContext,
    conv: ConvOps,
}

fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let ctx = common::gpu_context();
        let conv = pollster::block_on(ConvOps::new(&ctx)).unwrap_or_else(|e| panic!("building the kernels failed: {e}"));
        Gpu { ctx, conv }
    })
}

/// max |gpu - cpu| / max |cpu| for one feature map.
fn relative_error(gpu: &FeatureMap, cpu: &FeatureMap) -> f32 {
    assert_eq!((gpu.name.as_str(), gpu.channels, gpu.height, gpu.width), (cpu.name.as_str(), cpu.channels, cpu.height, cpu.width));
    let scale = cpu.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    gpu.data.iter().zip(&cpu.data).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// Runs `onnx` on tract and on the GPU with the same input; returns the worst relative error.
fn compare(onnx: &[u8], size: u32, outputs: &[&str], input: &[f32]) -> f32 {
    let (manifest, _) = common::backbone();
    let cpu = Backbone::load(&manifest, onnx, size, outputs).expect("tract loads the model").run(input.to_vec()).expect("tract runs it");
    let g = gpu();
    let network = pollster::block_on(GpuNetwork::new(&g.ctx, &g.conv, &manifest, onnx, size, outputs)).unwrap_or_else(|e| panic!("{e}"));
    let got = pollster::block_on(network.run(&g.ctx, input)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), outputs.len());
    got.iter().zip(&cpu).map(|(g, c)| relative_error(g, c)).fold(0f32, f32::max)
}

#[test]
fn the_real_backbone_matches_tract_on_real_photos() {
    let (manifest, onnx) = common::backbone();
    let names: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
    let preprocess = manifest.preprocess();
    let cell = common::elpv_mono("1.0").into_iter().next().expect("a cracked ELPV cell");
    for file in [cell.as_str(), "tests/data/skimage/chelsea.png", "tests/data/skimage/brick.png"] {
        let rgb = decode_rgb(file, &common::read(file)).unwrap();
        for even in [false, true] {
            let error = compare(&onnx, manifest.input.size, &names, &preprocess.tensor(&rgb, even));
            eprintln!("{file} (evened: {even}): relative error {error:.2e}");
            assert!(error <= 1e-3, "{file}: the GPU backbone is {error:.2e} off tract");
        }
    }
}

#[test]
fn the_backbone_plan_fuses_activations_and_reuses_buffers() {
    let (manifest, onnx) = common::backbone();
    let plan = plan(&manifest, &onnx, 224, &["feat_s4", "feat_s8", "feat_s16"]).unwrap();
    let convs = plan.steps.iter().filter(|s| matches!(s, Step::Conv { .. })).count();
    let adds = plan.steps.len() - convs;
    // Lite0 up to block 10 (feat_s16): the stem, 11 blocks (the first of 2 convolutions, ten of 3), and a
    // residual add in every block that keeps its width and stride.
    assert_eq!((convs, adds), (1 + 2 + 10 * 3, 6), "{:?}", plan.steps.len());
    let relu6 = plan.steps.iter().filter(|s| matches!(s, Step::Conv { spec, .. } if spec.activation == Activation::Relu6)).count();
    assert_eq!(relu6, 1 + 2 * 11 - 1, "every convolution but the projections ends in ReLU6");
    let g = gpu();
    let network = pollster::block_on(GpuNetwork::new(&g.ctx, &g.conv, &manifest, &onnx, 224, &["feat_s4", "feat_s8", "feat_s16"])).unwrap();
    let one_buffer_each: u64 = plan.activations.iter().map(|s| s.len() as u64 * 4).sum();
    let weights: u64 =
        plan.steps.iter().map(|s| if let Step::Conv { weight, bias, .. } = s { (weight.len() + bias.len()) as u64 * 4 } else { 0 }).sum();
    assert!(
        network.device_bytes < weights + one_buffer_each / 2,
        "{} bytes on the device; one buffer per activation would be {one_buffer_each}",
        network.device_bytes
    );
}

fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| (rng.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale).collect()
}

/// Another small backbone made of the same op set, but written the way other exporters
/// write it: explicit pads, an unfolded BatchNormalization, ReLU, Clip with inputs, a
/// depthwise convolution, a residual add, and two outputs.
fn other_backbone(extra: Option<(&str, &str)>) -> Vec<u8> {
    let mut graph = Graph::new("input", &[1, 3, 32, 32])
        .weight("w1", &[8, 3, 3, 3], values(1, 8 * 27, 0.5))
        .weight("b1", &[8], values(2, 8, 0.2))
        .node("Conv", "stem", &["input", "w1", "b1"], &["c1"], vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])])
        .weight("gamma", &[8], values(3, 8, 1.0))
        .weight("beta", &[8], values(4, 8, 0.3))
        .weight("mean", &[8], values(5, 8, 0.2))
        .weight("var", &[8], values(6, 8, 0.4).iter().map(|v| v.abs() + 0.1).collect())
        .node("BatchNormalization", "bn", &["c1", "gamma", "beta", "mean", "var"], &["n1"], vec![float("epsilon", 1e-3)])
        .node("Relu", "relu", &["n1"], &["r1"], vec![])
        .weight("wd", &[8, 1, 3, 3], values(7, 72, 0.5))
        .node("Conv", "depthwise", &["r1", "wd"], &["d1"], vec![int("group", 8), text("auto_pad", "SAME_UPPER")])
        .weight("lo", &[], vec![0.0])
        .weight("hi", &[], vec![6.0])
        .node("Clip", "clip", &["d1", "lo", "hi"], &["k1"], vec![])
        .weight("wp", &[8, 8, 1, 1], values(8, 64, 0.5))
        .weight("bp", &[8], values(9, 8, 0.1))
        .node("Conv", "project", &["k1", "wp", "bp"], &["p1"], vec![])
        .node("Add", "residual", &["p1", "r1"], &["feat_s8"], vec![])
        .weight("w2", &[16, 8, 5, 5], values(10, 16 * 200, 0.2))
        .node("Conv", "down", &["feat_s8", "w2"], &["feat_s16"], vec![ints("strides", &[2, 2]), text("auto_pad", "SAME_UPPER")]);
    if let Some((op, input)) = extra {
        graph = graph.node(op, "odd_one", &[input], &["odd"], vec![]).output("odd");
    }
    graph.output("feat_s8").output("feat_s16").encode()
}

#[test]
fn another_backbone_of_the_same_ops_runs_without_new_code() {
    let onnx = other_backbone(None);
    let input = values(11, 3 * 32 * 32, 1.0);
    let error = compare(&onnx, 32, &["feat_s8", "feat_s16"], &input);
    assert!(error <= 1e-5, "the GPU is {error:.2e} off tract");
    let (manifest, _) = common::backbone();
    let plan = plan(&manifest, &onnx, 32, &["feat_s8", "feat_s16"]).unwrap();
    // BatchNormalization and ReLU went into the stem, Clip into the depthwise step.
    assert_eq!(
        plan.steps.len(),
        5,
        "{:#?}",
        plan.steps
            .iter()
            .map(|s| match s {
                Step::Conv { spec, .. } => format!("{spec:?}"),
                Step::Add { .. } => "add".into(),
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_op_the_gpu_lacks_is_named_so_the_cpu_path_takes_over() {
    let (manifest, _) = common::backbone();
    let onnx = other_backbone(Some(("Sigmoid", "feat_s8")));
    let err = plan(&manifest, &onnx, 32, &["feat_s8", "feat_s16", "odd"]).expect_err("refused");
    assert!(matches!(&err, GpuError::Unsupported { node, .. } if node == "odd_one"), "{err}");
    assert!(err.to_string().contains("CPU backend"), "{err}");
    // The same model without the odd node plans fine: the refusal is about that node.
    assert!(plan(&manifest, &onnx, 32, &["feat_s8", "feat_s16"]).is_ok());
}

// ---------------------------------------------------------------------------------------
// The whole frame: photo -> verdict and heatmap on the GPU, against the CPU path

#[test]
fn whole_inspections_on_the_gpu_match_the_cpu_path() {
    use damagelens::engine::gpu::GpuInspector;
    use damagelens::engine::inspector::{Inspector, Trainer};
    use damagelens::engine::settings::TrainSettings;

    let (manifest, onnx) = common::backbone();
    let cpu = Inspector::new(manifest, &onnx).unwrap();
    let g = gpu();
    let mut gpu = pollster::block_on(GpuInspector::new(g.ctx.clone(), &cpu, &onnx)).unwrap_or_else(|e| panic!("{e}"));
    let good = common::elpv_mono("0.0");
    let cracked = common::elpv_mono("1.0");
    let mut ensemble = TrainSettings::ensemble();
    ensemble.even_brightness = true;
    for (name, settings) in [("PaDiM", TrainSettings::padim()), ("PatchCore", TrainSettings::patchcore()), ("ensemble", ensemble)] {
        let mut trainer = Trainer::new(&cpu, &settings).unwrap();
        for file in &good[..12] {
            trainer.add(file, &common::read(file)).unwrap();
        }
        let profile = trainer.finish(name).unwrap();
        pollster::block_on(gpu.load_profile(&profile)).unwrap();
        for file in good[20..22].iter().chain(&cracked[..2]) {
            let bytes = common::read(file);
            let (want, _) = cpu.inspect_timed(&profile, file, &bytes).unwrap();
            let judged = pollster::block_on(gpu.inspect(&profile, file, &bytes, true)).unwrap_or_else(|e| panic!("{name} {file}: {e}"));
            let (got, times) = (judged.inspection, judged.times);
            // The photo's global embedding from the GPU's own feature maps, as the CPU makes it.
            let (maps, _) = cpu.feature_maps(file, &bytes, profile.even_brightness).unwrap();
            let cpu_embedding = damagelens::engine::identify::GlobalEmbedding::from_maps(&maps).unwrap();
            let apart = judged.embedding.expect("asked for").distance(&cpu_embedding.0);
            assert!(apart < 1e-3, "{name} {file}: the GPU's embedding is {apart} from the CPU's");
            let off = (got.score - want.score).abs() / want.score.abs();
            eprintln!("{name} {file}: CPU {} GPU {} ({off:.1e} off); {times:?}", want.score, got.score);
            assert!(off <= 0.01, "{name} {file}: image score {} on the GPU, {} on the CPU", got.score, want.score);
            assert_eq!(got.band, want.band, "{name} {file}: the verdicts differ");
            assert_eq!((got.image_width, got.image_height), (want.image_width, want.image_height));
            // The heatmaps look the same: every channel within a few steps of 255.
            let worst = got.heatmap.iter().zip(&want.heatmap).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 3, "{name} {file}: a heatmap channel is {worst} off");
            assert!(times.backbone > 0.0 && times.scoring > 0.0 && times.postprocess > 0.0 && times.readback > 0.0, "{times:?}");
        }
    }
}

#[test]
fn a_profile_not_on_the_gpu_is_refused_not_scored_with_stale_models() {
    use damagelens::engine::gpu::{GpuInspector, InspectError};
    use damagelens::engine::inspector::{Inspector, Trainer};
    use damagelens::engine::settings::TrainSettings;

    let (manifest, onnx) = common::backbone();
    let cpu = Inspector::new(manifest, &onnx).unwrap();
    let mut gpu = pollster::block_on(GpuInspector::new(gpu().ctx.clone(), &cpu, &onnx)).unwrap();
    let good = common::elpv_mono("0.0");
    let mut trainer = Trainer::new(&cpu, &TrainSettings::padim()).unwrap();
    for file in &good[..10] {
        trainer.add(file, &common::read(file)).unwrap();
    }
    let profile = trainer.finish("solar cell").unwrap();
    pollster::block_on(gpu.load_profile(&profile)).unwrap();
    // A bad photo is the photo's fault, on either backend: no fallback would help.
    let err = pollster::block_on(gpu.inspect(&profile, "notes.jpg", b"not a photo", false)).expect_err("refused");
    assert!(matches!(err, InspectError::Input(_)) && err.to_string().contains("notes.jpg"), "{err}");
    // Another profile whose models were never uploaded.
    let other = damagelens::engine::profile::Profile { name: "another product".into(), ..profile };
    let err = pollster::block_on(gpu.inspect(&other, &good[11], &common::read(&good[11]), false)).expect_err("refused");
    assert!(matches!(err, InspectError::Gpu(_)) && err.to_string().contains("another product"), "{err}");
}
