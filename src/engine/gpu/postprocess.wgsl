// Post-processing family: patch scores -> anomaly map -> heatmap, as
// src/engine/postprocess.rs does on the CPU.
//
// upsample: bilinear, half-pixel centres, clamped (the CPU's bilinear_into), times
//   `gain` plus `offset`, added to what the map holds when `accumulate` is set: an
//   ensemble's members are put on their common scale and summed this way. Blurring
//   the sum equals summing the blurred members, as the blur is linear with unit gain.
// blur_rows, blur_cols: the separable Gaussian, edges clamped; the normalised taps come
//   from the host, computed by the CPU's own formula.
// colorize: calibration (threshold -> 0.5, clamped to [0, 1]), then the turbo colour from
//   a 256-entry table interpolated linearly, and the alpha ramp of heatmap_rgba; written
//   as one u32 per pixel, bytes R, G, B, A in memory order.

struct MapParams {
    grid_height: u32,
    grid_width: u32,
    size: u32,
    radius: u32,
    // grid / map size ratios, computed on the host like the CPU's.
    scale_y: f32,
    scale_x: f32,
    threshold: f32,
    span: f32,
    gain: f32,
    offset: f32,
    accumulate: u32,
    _pad: u32,
}

const GROUP: u32 = 64u;

fn pixel_index(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * groups.x + wid.x) * GROUP + lid;
}

@group(0) @binding(0) var<storage, read> upsample_scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> upsample_map: array<f32>;
@group(0) @binding(2) var<uniform> upsample_params: MapParams;

@compute @workgroup_size(64)
fn upsample(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let mp = upsample_params;
    let i = pixel_index(wid, groups, lid);
    if i >= mp.size * mp.size {
        return;
    }
    let y = i / mp.size;
    let x = i % mp.size;
    let fy = clamp((f32(y) + 0.5) * mp.scale_y - 0.5, 0.0, f32(mp.grid_height - 1u));
    let fx = clamp((f32(x) + 0.5) * mp.scale_x - 0.5, 0.0, f32(mp.grid_width - 1u));
    let y0 = u32(floor(fy));
    let x0 = u32(floor(fx));
    let y1 = min(y0 + 1u, mp.grid_height - 1u);
    let x1 = min(x0 + 1u, mp.grid_width - 1u);
    let wy = fy - f32(y0);
    let wx = fx - f32(x0);
    let w = mp.grid_width;
    let top = upsample_scores[y0 * w + x0] * (1.0 - wx) + upsample_scores[y0 * w + x1] * wx;
    let bottom = upsample_scores[y1 * w + x0] * (1.0 - wx) + upsample_scores[y1 * w + x1] * wx;
    var before = 0.0;
    if mp.accumulate != 0u {
        before = upsample_map[i];
    }
    upsample_map[i] = before + (top * (1.0 - wy) + bottom * wy) * mp.gain + mp.offset;
}

@group(0) @binding(10) var<storage, read> blur_src: array<f32>;
@group(0) @binding(11) var<storage, read> blur_taps: array<f32>;
@group(0) @binding(12) var<storage, read_write> blur_dst: array<f32>;
@group(0) @binding(13) var<uniform> blur_params: MapParams;

@compute @workgroup_size(64)
fn blur_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let bp = blur_params;
    let i = pixel_index(wid, groups, lid);
    if i >= bp.size * bp.size {
        return;
    }
    let row = i - i % bp.size;
    let x = i32(i % bp.size);
    let r = i32(bp.radius);
    let last = i32(bp.size) - 1;
    var sum = 0.0;
    for (var t = 0; t <= 2 * r; t++) {
        sum += blur_taps[t] * blur_src[row + u32(clamp(x + t - r, 0, last))];
    }
    blur_dst[i] = sum;
}

@compute @workgroup_size(64)
fn blur_cols(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let bp = blur_params;
    let i = pixel_index(wid, groups, lid);
    if i >= bp.size * bp.size {
        return;
    }
    let x = i % bp.size;
    let y = i32(i / bp.size);
    let r = i32(bp.radius);
    let last = i32(bp.size) - 1;
    var sum = 0.0;
    for (var t = 0; t <= 2 * r; t++) {
        sum += blur_taps[t] * blur_src[u32(clamp(y + t - r, 0, last)) * bp.size + x];
    }
    blur_dst[i] = sum;
}

@group(0) @binding(20) var<storage, read> color_map: array<f32>;
// Turbo at i / 255, channels 0..255 in x, y, z.
@group(0) @binding(21) var<storage, read> color_table: array<vec4<f32>, 256>;
@group(0) @binding(22) var<storage, read_write> color_rgba: array<u32>;
@group(0) @binding(23) var<uniform> color_params: MapParams;

@compute @workgroup_size(64)
fn colorize(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let cp = color_params;
    let i = pixel_index(wid, groups, lid);
    if i >= cp.size * cp.size {
        return;
    }
    let v = clamp((color_map[i] - cp.threshold) / cp.span + 0.5, 0.0, 1.0);
    let t = v * 255.0;
    let i0 = min(u32(floor(t)), 255u);
    let i1 = min(i0 + 1u, 255u);
    let rgb = round(mix(color_table[i0].xyz, color_table[i1].xyz, t - f32(i0)));
    let alpha = round(clamp((v - 0.15) / 0.35, 0.0, 1.0) * 0.75 * 255.0);
    let c = vec4<u32>(clamp(vec4<f32>(rgb, alpha), vec4<f32>(0.0), vec4<f32>(255.0)));
    color_rgba[i] = c.x | (c.y << 8u) | (c.z << 16u) | (c.w << 24u);
}
