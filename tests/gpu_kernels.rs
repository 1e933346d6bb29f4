//! Every WGSL kernel of `engine::gpu` against its CPU reference, natively.
//!
//! These tests need a Vulkan driver. On a machine without a GPU that is Mesa's lavapipe:
//! `apt-get install mesa-vulkan-drivers libvulkan1` (CI installs it). Without an adapter
//! every test here fails with that hint; they never skip silently, since a silently
//! skipped GPU test would let a broken kernel through.
//!
//! All tests share one device (created once, behind a `OnceLock`) with the default
//! WebGPU limits, so a kernel that passes here also fits a browser's limits.
//!
//! Tolerances: f32 results must agree within `1e-4 * max(1, |expected|)` per value
//! (the GPU sums in a different order or with fused multiply-adds, and WGSL division and
//! sqrt are not correctly rounded); heatmap channels within 1 of 255 (the GPU
//! interpolates a 256-entry turbo table instead of evaluating the polynomial).

mod common;

use std::sync::OnceLock;

use damagelens::engine::embed::FeatureMap;
use damagelens::engine::embed::{gaussian_projection, EmbedConfig, Embedder, PatchGrid};
use damagelens::engine::gpu::{
    same_padding, Activation, Conv2dSpec, ConvOps, EmbedOp, ErrorScope, GpuContext, GpuError, GpuFeatureMap, MapSpec, MatmulSpec, Padding,
    PostprocessOp, ScoreOps, MAX_PADIM_DIMS,
};
use damagelens::engine::padim::{PadimAccumulator, PadimModel};
use damagelens::engine::patchcore::PatchCoreModel;
use damagelens::engine::postprocess::{blur_sigma, heatmap_rgba, AnomalyMap, Calibration};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const TOLERANCE: f32 = 1e-4;

struct Gpu {
    ctx: GpuContext,
    conv: ConvOps,
    embed: EmbedOp,
    score: ScoreOps,
    post: PostprocessOp,
}

fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let ctx = common::gpu_context();
        pollster::block_on(async {
            let kernels = async {
                Ok::<_, GpuError>(Gpu {
                    conv: ConvOps::new(&ctx).await?,
                    embed: EmbedOp::new(&ctx).await?,
                    score: ScoreOps::new(&ctx).await?,
                    post: PostprocessOp::new(&ctx).await?,
                    ctx: ctx.clone(),
                })
            };
            kernels.await.unwrap_or_else(|e| panic!("building the GPU kernels failed: {e}"))
        })
    })
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform in [lo, hi).
fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)).collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    let mut worst = (0usize, 0f32);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(!err.is_nan(), "{what}: value {i} is {g}, expected {w}");
        if err > worst.1 {
            worst = (i, err);
        }
    }
    assert!(
        worst.1 <= tolerance,
        "{what}: value {} is {}, expected {} (relative error {:e} > {tolerance:e})",
        worst.0,
        got[worst.0],
        want[worst.0],
        worst.1
    );
}

// ---------------------------------------------------------------------------------------
// Convolution family

/// Naive convolution in f64 with TensorFlow SAME padding, written from the definition
/// (independent of `Conv2dSpec::padding`).
fn conv_reference(spec: &Conv2dSpec, input: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (ih, iw) = (spec.in_height as isize, spec.in_width as isize);
    let (kh, kw) = (spec.kernel.0 as isize, spec.kernel.1 as isize);
    let (sh, sw) = (spec.stride.0 as isize, spec.stride.1 as isize);
    let oh = (ih + sh - 1) / sh;
    let ow = (iw + sw - 1) / sw;
    let pad_top = ((oh - 1) * sh + kh - ih).max(0) / 2;
    let pad_left = ((ow - 1) * sw + kw - iw).max(0) / 2;
    let cin_g = spec.in_channels / spec.groups;
    let cout_g = spec.out_channels / spec.groups;
    let mut out = Vec::new();
    for oc in 0..spec.out_channels {
        let g = oc / cout_g;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0f64;
                for ci in 0..cin_g {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let y = oy * sh - pad_top + ky;
                            let x = ox * sw - pad_left + kx;
                            if y < 0 || y >= ih || x < 0 || x >= iw {
                                continue;
                            }
                            let c = g * cin_g + ci;
                            let v = input[(c * spec.in_height + y as usize) * spec.in_width + x as usize] as f64;
                            let k = weight[((oc * cin_g + ci) * spec.kernel.0 + ky as usize) * spec.kernel.1 + kx as usize];
                            sum += v * k as f64;
                        }
                    }
                }
                let mut v = sum + bias.map_or(0.0, |b| b[oc] as f64);
                if spec.activation == Activation::Relu6 {
                    v = v.clamp(0.0, 6.0);
                }
                out.push(v as f32);
            }
        }
    }
    out
}

fn check_conv(name: &str, spec: Conv2dSpec, with_bias: bool, weight_scale: f32, seed: u64) -> Vec<f32> {
    let g = gpu();
    let mut r = rng(seed);
    let input = uniform(&mut r, spec.input_len(), -1.0, 1.0);
    let weight = uniform(&mut r, spec.weight_len(), -weight_scale, weight_scale);
    let bias = with_bias.then(|| uniform(&mut r, spec.out_channels, -0.5, 0.5));
    let want = conv_reference(&spec, &input, &weight, bias.as_deref());
    let got = pollster::block_on(g.conv.conv2d(&g.ctx, &spec, &input, &weight, bias.as_deref())).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got.len(), spec.out_channels * spec.out_height() * spec.out_width());
    assert_close(name, &got, &want, TOLERANCE);
    got
}

/// A square-kernel convolution: (channels, height, width) in, channels out.
fn spec(input: (usize, usize, usize), cout: usize, k: usize, s: usize, groups: usize, act: Activation) -> Conv2dSpec {
    Conv2dSpec {
        in_channels: input.0,
        in_height: input.1,
        in_width: input.2,
        out_channels: cout,
        kernel: (k, k),
        stride: (s, s),
        groups,
        pad: Padding::Same,
        activation: act,
    }
}

#[test]
fn same_padding_follows_tensorflow() {
    // (input, kernel, stride) -> (output, padding before)
    assert_eq!(same_padding(224, 3, 2), (112, 0)); // total 1: the odd pixel goes after
    assert_eq!(same_padding(112, 3, 1), (112, 1));
    assert_eq!(same_padding(7, 5, 2), (4, 2));
    assert_eq!(same_padding(8, 5, 2), (4, 1)); // total 3
    assert_eq!(same_padding(9, 1, 2), (5, 0));
    assert_eq!(same_padding(3, 5, 1), (3, 2));
}

#[test]
fn conv_3x3_stride_1() {
    check_conv("conv 3x3 s1", spec((5, 9, 11), 7, 3, 1, 1, Activation::None), true, 0.5, 1);
}

#[test]
fn conv_3x3_stride_2_odd_sizes_without_bias() {
    check_conv("conv 3x3 s2", spec((4, 13, 10), 6, 3, 2, 1, Activation::None), false, 0.5, 2);
}

#[test]
fn conv_5x5_stride_2() {
    check_conv("conv 5x5 s2", spec((3, 15, 17), 8, 5, 2, 1, Activation::None), true, 0.5, 3);
}

#[test]
fn conv_relu6_clips_both_ends() {
    // Large weights push many outputs past 6 and below 0.
    let out = check_conv("conv relu6", spec((6, 11, 9), 5, 3, 2, 1, Activation::Relu6), true, 3.0, 4);
    assert!(out.contains(&6.0), "no output was clipped at 6");
    assert!(out.contains(&0.0), "no output was clipped at 0");
    assert!(out.iter().any(|v| *v > 0.0 && *v < 6.0));
}

#[test]
fn depthwise_conv_3x3_and_5x5() {
    check_conv("depthwise 3x3 s1", spec((6, 11, 7), 6, 3, 1, 6, Activation::Relu6), true, 1.0, 5);
    check_conv("depthwise 5x5 s2", spec((9, 13, 14), 9, 5, 2, 9, Activation::None), true, 1.0, 6);
}

#[test]
fn grouped_and_rectangular_conv() {
    check_conv("grouped", spec((6, 8, 9), 4, 3, 1, 2, Activation::None), true, 0.5, 7);
    let rect = Conv2dSpec { kernel: (1, 3), stride: (2, 1), ..spec((3, 9, 8), 4, 1, 1, 1, Activation::None) };
    check_conv("1x3 kernel, stride 2x1", rect, true, 0.5, 8);
}

#[test]
fn conv_refuses_inconsistent_shapes() {
    let g = gpu();
    let s = spec((4, 5, 5), 4, 3, 1, 1, Activation::None);
    let input = vec![0.0; s.input_len()];
    let short = vec![0.0; s.weight_len() - 1];
    let err = pollster::block_on(g.conv.conv2d(&g.ctx, &s, &input, &short, None)).unwrap_err();
    assert!(matches!(err, GpuError::Shape { .. }), "{err}");
    let bad_groups = spec((4, 5, 5), 6, 3, 1, 4, Activation::None);
    let err = pollster::block_on(g.conv.conv2d(&g.ctx, &bad_groups, &input, &[0.0; 54], None)).unwrap_err();
    assert!(err.to_string().contains("groups"), "{err}");
}

#[test]
fn pointwise_matmul_with_sizes_off_the_tile() {
    let g = gpu();
    let mut r = rng(10);
    // 37 -> 21 channels over a 9x13 map: no size is a multiple of the 16x16 tile.
    let (cin, cout, positions) = (37, 21, 9 * 13);
    let input = uniform(&mut r, cin * positions, -1.0, 1.0);
    let weight = uniform(&mut r, cout * cin, -1.0, 1.0);
    let bias = uniform(&mut r, cout, -1.0, 1.0);
    let mut want = vec![0f32; cout * positions];
    for o in 0..cout {
        for p in 0..positions {
            let s: f64 = (0..cin).map(|c| weight[o * cin + c] as f64 * input[c * positions + p] as f64).sum();
            want[o * positions + p] = (s + bias[o] as f64).clamp(0.0, 6.0) as f32;
        }
    }
    let got = pollster::block_on(g.conv.pointwise(&g.ctx, &input, cin, &weight, Some(&bias), Activation::Relu6)).unwrap();
    assert_close("pointwise", &got, &want, TOLERANCE);
    assert!(got.contains(&0.0) && got.iter().any(|v| *v > 0.0));

    // A plain product with a single row and a long inner dimension.
    let spec = MatmulSpec { m: 1, k: 300, n: 5, activation: Activation::None };
    let a = uniform(&mut r, 300, -1.0, 1.0);
    let b = uniform(&mut r, 1500, -1.0, 1.0);
    let want: Vec<f32> = (0..5).map(|j| (0..300).map(|i| a[i] as f64 * b[i * 5 + j] as f64).sum::<f64>() as f32).collect();
    let got = pollster::block_on(g.conv.matmul(&g.ctx, &spec, &a, &b, None)).unwrap();
    assert_close("matmul 1x300x5", &got, &want, TOLERANCE);
}

#[test]
fn residual_add_is_elementwise() {
    let g = gpu();
    let mut r = rng(11);
    let n = 1000 * 3 + 7;
    let a = uniform(&mut r, n, -5.0, 5.0);
    let b = uniform(&mut r, n, -5.0, 5.0);
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let got = pollster::block_on(g.conv.residual_add(&g.ctx, &a, &b)).unwrap();
    assert_eq!(got, want, "a float sum has one right answer");
    assert!(pollster::block_on(g.conv.residual_add(&g.ctx, &a, &b[1..])).is_err());
}

// ---------------------------------------------------------------------------------------
// Embedding

fn feature_map(rng: &mut ChaCha8Rng, name: &str, c: usize, h: usize, w: usize) -> FeatureMap {
    // ReLU6-like activations: a good share exactly zero, the rest up to 6.
    let data = uniform(rng, c * h * w, -3.0, 6.0).into_iter().map(|v| v.max(0.0)).collect();
    FeatureMap { name: name.into(), channels: c, height: h, width: w, data }
}

fn embedder(layers: &[&str], in_dims: usize, dims: Option<usize>, neighbourhood: usize) -> Embedder {
    let config = EmbedConfig { layers: layers.iter().map(|s| s.to_string()).collect(), dims, seed: 7, neighbourhood };
    let projection = dims.map(|d| gaussian_projection(in_dims, d, 7)).unwrap_or_default();
    Embedder::from_parts(config, in_dims, projection).unwrap()
}

fn check_embed(name: &str, embedder: &Embedder, maps: &[FeatureMap]) {
    let g = gpu();
    let want = embedder.embed(maps).unwrap();
    let got: PatchGrid = pollster::block_on(g.embed.embed(&g.ctx, embedder, maps)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!((got.height, got.width, got.dims), (want.height, want.width, want.dims), "{name}: shape");
    assert_close(name, &got.data, &want.data, TOLERANCE);
}

#[test]
fn embed_matches_the_cpu_embedder() {
    let mut r = rng(20);
    // The finest layer first; a coarser one (bilinear) and a finer one (block mean), given
    // out of order and next to a map the embedding does not use.
    let maps = vec![
        feature_map(&mut r, "coarse", 12, 4, 5),
        feature_map(&mut r, "unused", 3, 8, 10),
        feature_map(&mut r, "base", 10, 8, 10),
        feature_map(&mut r, "fine", 5, 16, 20),
    ];
    let layers = ["base", "coarse", "fine"];
    check_embed("projection + 3x3 average", &embedder(&layers, 27, Some(9), 3), &maps);
    check_embed("no projection, no average", &embedder(&layers, 27, None, 1), &maps);
    check_embed("projection, 5x5 average", &embedder(&layers, 27, Some(20), 5), &maps);

    // Odd grids whose sizes are not multiples of each other.
    let odd = vec![feature_map(&mut r, "a", 6, 7, 9), feature_map(&mut r, "b", 17, 3, 5)];
    check_embed("odd grid", &embedder(&["a", "b"], 23, Some(17), 3), &odd);
}

#[test]
fn embed_reports_a_missing_layer() {
    let g = gpu();
    let mut r = rng(21);
    let maps = vec![feature_map(&mut r, "base", 4, 4, 4)];
    let err = pollster::block_on(g.embed.embed(&g.ctx, &embedder(&["base", "other"], 8, None, 1), &maps)).unwrap_err();
    assert!(err.to_string().contains("no feature map other"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Scoring

fn random_grid(rng: &mut ChaCha8Rng, h: usize, w: usize, dims: usize, lo: f32, hi: f32) -> PatchGrid {
    PatchGrid { height: h, width: w, dims, data: uniform(rng, h * w * dims, lo, hi) }
}

fn padim_model(seed: u64, h: usize, w: usize, dims: usize, images: usize) -> PadimModel {
    let mut r = rng(seed);
    let mut acc = PadimAccumulator::new(h, w, dims);
    for _ in 0..images {
        acc.add(&random_grid(&mut r, h, w, dims, 0.0, 2.0)).unwrap();
    }
    acc.finish(0.05).unwrap()
}

#[test]
fn padim_matches_the_cpu_model() {
    let g = gpu();
    let mut r = rng(30);
    // 24 dims: fewer rows than invocations; 70 dims: several rows per invocation.
    for (dims, images) in [(24, 40), (70, 30)] {
        let model = padim_model(31 + dims as u64, 5, 6, dims, images);
        let grid = random_grid(&mut r, 5, 6, dims, -0.5, 2.5);
        let want = model.score(&grid).unwrap();
        let device_model = pollster::block_on(g.score.upload_padim(&g.ctx, &model)).unwrap();
        let got = pollster::block_on(g.score.padim_scores(&g.ctx, &device_model, &grid)).unwrap();
        assert_close(&format!("padim {dims} dims"), &got, &want, TOLERANCE);

        // Split into chunks of 7 positions: the same scores.
        let chunked = pollster::block_on(g.score.upload_padim_in_chunks(&g.ctx, &model, 7)).unwrap();
        let got = pollster::block_on(g.score.padim_scores(&g.ctx, &chunked, &grid)).unwrap();
        assert_close(&format!("padim {dims} dims, chunked"), &got, &want, TOLERANCE);
    }
}

#[test]
fn padim_refuses_what_does_not_fit() {
    let g = gpu();
    let d = MAX_PADIM_DIMS + 1;
    let model = PadimModel { height: 1, width: 1, dims: d, mean: vec![0.0; d], inv_chol: vec![0.0; d * (d + 1) / 2] };
    let err = pollster::block_on(g.score.upload_padim(&g.ctx, &model)).unwrap_err();
    assert!(matches!(err, GpuError::TooLarge { .. }), "{err}");
    let small = padim_model(32, 2, 2, 3, 5);
    let device_model = pollster::block_on(g.score.upload_padim(&g.ctx, &small)).unwrap();
    let wrong = PatchGrid { height: 2, width: 2, dims: 4, data: vec![0.0; 16] };
    assert!(pollster::block_on(g.score.padim_scores(&g.ctx, &device_model, &wrong)).is_err());
}

#[test]
fn patchcore_matches_the_cpu_model() {
    let g = gpu();
    let mut r = rng(40);
    let dims = 40;
    let model = PatchCoreModel { dims, bank: uniform(&mut r, 2500 * dims, -1.0, 1.0) };
    let grid = random_grid(&mut r, 9, 7, dims, -1.2, 1.2);
    let want = model.score(&grid).unwrap();
    // Scores are distances of a few units; compare them on that scale.
    let scale = want.iter().copied().fold(0.0, f32::max);
    let rescale = |v: &[f32]| v.iter().map(|x| x / scale).collect::<Vec<_>>();

    // One chunk of three slices (1024 + 1024 + 452 rows).
    let device_model = pollster::block_on(g.score.upload_patchcore(&g.ctx, &model)).unwrap();
    let got = pollster::block_on(g.score.patchcore_scores(&g.ctx, &device_model, &grid)).unwrap();
    assert_close("patchcore", &rescale(&got), &rescale(&want), TOLERANCE);

    // Four chunks of at most 700 rows.
    let chunked = pollster::block_on(g.score.upload_patchcore_in_chunks(&g.ctx, &model, 700)).unwrap();
    let got = pollster::block_on(g.score.patchcore_scores(&g.ctx, &chunked, &grid)).unwrap();
    assert_close("patchcore, chunked", &rescale(&got), &rescale(&want), TOLERANCE);

    // A patch that is in the bank finds itself: distance ~0 (up to f32 cancellation in
    // |q|^2 + |b|^2 - 2 q.b, which the CPU has too).
    let mut copies = grid.clone();
    copies.data[..dims].copy_from_slice(&model.bank[1234 * dims..1235 * dims]);
    let got = pollster::block_on(g.score.patchcore_scores(&g.ctx, &device_model, &copies)).unwrap();
    assert!(got[0] < 1e-2, "a bank entry scored {}", got[0]);
}

// ---------------------------------------------------------------------------------------
// Post-processing

fn check_postprocess(name: &str, grid: (usize, usize), size: usize, sigma: f32, seed: u64, spans_scale: bool) {
    let g = gpu();
    let mut r = rng(seed);
    let scores = uniform(&mut r, grid.0 * grid.1, 0.0, 10.0);
    let calibration = Calibration { threshold: 5.0, min: 1.0, max: 9.0, method: "test".into(), check: None, expected_flagged: None };
    let want = AnomalyMap::from_patch_scores(&scores, grid.0, grid.1, size, sigma);
    let normalised: Vec<f32> = want.values.iter().map(|v| calibration.normalise(*v)).collect();
    let want_rgba = heatmap_rgba(&normalised);

    let spec = MapSpec { grid_height: grid.0, grid_width: grid.1, size, sigma };
    let got = pollster::block_on(g.post.anomaly_map(&g.ctx, &spec, &calibration, &scores)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got.size, size);
    assert_close(&format!("{name}: map"), &got.values, &want.values, TOLERANCE);
    assert_eq!(got.rgba.len(), want_rgba.len());
    let worst = got.rgba.iter().zip(&want_rgba).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    assert!(worst <= 1, "{name}: a heatmap channel is {worst} off");
    // Where the map spans the scale, both transparent and opaque pixels were compared.
    assert!(!spans_scale || want_rgba.chunks(4).any(|p| p[3] == 0) && want_rgba.chunks(4).any(|p| p[3] > 150), "{name}: dull map");
}

#[test]
fn postprocess_matches_the_cpu_map_and_heatmap() {
    check_postprocess("7x7 grid, 64 px, blur", (7, 7), 64, blur_sigma(64), 50, true);
    check_postprocess("5x8 grid, 50 px, no blur", (5, 8), 50, 0.0, 51, true);
    // A blur wider than the map: most taps are clamped to the border (and the map is flat).
    check_postprocess("4x4 grid, 16 px, wide blur", (4, 4), 16, blur_sigma(256), 52, false);
    check_postprocess("28x28 grid, 224 px", (28, 28), 224, blur_sigma(224), 53, true);
}

// ---------------------------------------------------------------------------------------
// The ops chained on the device

#[test]
fn a_frame_stays_on_the_device_until_the_map() {
    let g = gpu();
    let mut r = rng(60);
    let embedder = embedder(&["s8", "s16"], 20, Some(10), 3);
    let frame = |r: &mut ChaCha8Rng| vec![feature_map(r, "s8", 8, 8, 8), feature_map(r, "s16", 12, 4, 4)];
    let mut bank = Vec::new();
    for _ in 0..3 {
        bank.extend(embedder.embed(&frame(&mut r)).unwrap().data);
    }
    let model = PatchCoreModel { dims: 10, bank };
    let maps = frame(&mut r);
    let spec = MapSpec { grid_height: 8, grid_width: 8, size: 64, sigma: blur_sigma(64) };

    // The CPU path, step by step.
    let scores = model.score(&embedder.embed(&maps).unwrap()).unwrap();
    let want = AnomalyMap::from_patch_scores(&scores, 8, 8, 64, spec.sigma);
    let calibration = Calibration {
        threshold: (want.min() + want.max()) / 2.0,
        min: want.min(),
        max: want.max(),
        method: "test".into(),
        check: None,
        expected_flagged: None,
    };
    let normalised: Vec<f32> = want.values.iter().map(|v| calibration.normalise(*v)).collect();
    let want_rgba = heatmap_rgba(&normalised);

    // The GPU path: one submission from feature maps to heatmap, one readback.
    let pixels = 64 * 64;
    let read = pollster::block_on(async {
        let device_model = g.score.upload_patchcore(&g.ctx, &model).await?;
        let scope = ErrorScope::push(&g.ctx.device);
        let buffers = maps.iter().map(|m| g.ctx.storage("test", &m.name, &m.data)).collect::<Result<Vec<_>, _>>()?;
        let device_maps: Vec<GpuFeatureMap> = maps.iter().zip(&buffers).map(|(m, buffer)| GpuFeatureMap::of(m, buffer)).collect();
        let mut encoder = g.ctx.encoder("frame");
        let grid = g.embed.encode_embed(&g.ctx, &mut encoder, &embedder, &device_maps)?;
        let scores = g.score.encode_patchcore(&g.ctx, &mut encoder, &device_model, &grid)?;
        let map = g.post.encode(&g.ctx, &mut encoder, &spec, &calibration, &scores)?;
        g.ctx.submit_and_read::<u32>("frame", encoder, &[(&map.values, pixels), (&map.rgba, pixels)], scope).await
    })
    .unwrap();
    let values: Vec<f32> = read[0].iter().map(|v| f32::from_bits(*v)).collect();
    let rgba: Vec<u8> = read[1].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_close("chained map", &values, &want.values, TOLERANCE);
    let worst = rgba.iter().zip(&want_rgba).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    assert!(worst <= 1, "chained heatmap: a channel is {worst} off");
}
