// Embedding family: feature maps -> one grid of patch vectors, as src/engine/embed.rs
// does on the CPU.
//
// resample_into brings one C x h x w feature map onto the H x W grid of the finest layer
// and writes it into its slice of the concatenated patch matrix (positions x in_dims):
// a copy when the sizes agree, the mean of each block when the map is finer, bilinear
// interpolation with half-pixel centres (align_corners = false, clamped) when it is
// coarser. The random projection that follows is a plain matrix product and reuses the
// tiled kernel of conv.wgsl. neighbourhood_average then gives each patch the mean of its
// size x size neighbourhood, clipped at the borders (PatchCore's local aggregation).
//
// Scale factors and reciprocals are computed on the host, in the same f32 operations as
// the CPU code, because WGSL division is not correctly rounded.

struct ResampleParams {
    channels: u32,
    src_height: u32,
    src_width: u32,
    dst_height: u32,
    dst_width: u32,
    // Row length of the concatenated matrix and the first column of this map.
    in_dims: u32,
    offset: u32,
    // 0 copy, 1 block mean, 2 bilinear.
    mode: u32,
    block_h: u32,
    block_w: u32,
    // Block mean: 1 / (block_h * block_w). Bilinear: src / dst size ratios.
    block_norm: f32,
    scale_y: f32,
    scale_x: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> resample_src: array<f32>;
@group(0) @binding(1) var<storage, read_write> resample_dst: array<f32>;
@group(0) @binding(2) var<uniform> resample_params: ResampleParams;

const MODE_COPY: u32 = 0u;
const MODE_BLOCK_MEAN: u32 = 1u;
const GROUP: u32 = 64u;

@compute @workgroup_size(64)
fn resample_into(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let rp = resample_params;
    let index = (wid.y * groups.x + wid.x) * GROUP + lid;
    let positions = rp.dst_height * rp.dst_width;
    if index >= rp.channels * positions {
        return;
    }
    // Channel fastest, so neighbouring invocations write neighbouring values.
    let c = index % rp.channels;
    let p = index / rp.channels;
    let y = p / rp.dst_width;
    let x = p % rp.dst_width;
    let plane = c * rp.src_height * rp.src_width;

    var value = 0.0;
    if rp.mode == MODE_COPY {
        value = resample_src[plane + p];
    } else if rp.mode == MODE_BLOCK_MEAN {
        var sum = 0.0;
        for (var dy = 0u; dy < rp.block_h; dy++) {
            let row = plane + (y * rp.block_h + dy) * rp.src_width + x * rp.block_w;
            for (var dx = 0u; dx < rp.block_w; dx++) {
                sum += resample_src[row + dx];
            }
        }
        value = sum * rp.block_norm;
    } else {
        let fy = clamp((f32(y) + 0.5) * rp.scale_y - 0.5, 0.0, f32(rp.src_height - 1u));
        let fx = clamp((f32(x) + 0.5) * rp.scale_x - 0.5, 0.0, f32(rp.src_width - 1u));
        let y0 = u32(floor(fy));
        let x0 = u32(floor(fx));
        let y1 = min(y0 + 1u, rp.src_height - 1u);
        let x1 = min(x0 + 1u, rp.src_width - 1u);
        let wy = fy - f32(y0);
        let wx = fx - f32(x0);
        let top = resample_src[plane + y0 * rp.src_width + x0] * (1.0 - wx)
            + resample_src[plane + y0 * rp.src_width + x1] * wx;
        let bottom = resample_src[plane + y1 * rp.src_width + x0] * (1.0 - wx)
            + resample_src[plane + y1 * rp.src_width + x1] * wx;
        value = top * (1.0 - wy) + bottom * wy;
    }
    resample_dst[p * rp.in_dims + rp.offset + c] = value;
}

struct AverageParams {
    height: u32,
    width: u32,
    dims: u32,
    radius: u32,
}

@group(0) @binding(10) var<storage, read> average_src: array<f32>;
@group(0) @binding(11) var<storage, read_write> average_dst: array<f32>;
@group(0) @binding(12) var<uniform> average_params: AverageParams;

@compute @workgroup_size(64)
fn neighbourhood_average(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ap = average_params;
    let index = (wid.y * groups.x + wid.x) * GROUP + lid;
    if index >= ap.height * ap.width * ap.dims {
        return;
    }
    let k = index % ap.dims;
    let p = index / ap.dims;
    let y = p / ap.width;
    let x = p % ap.width;
    let y_first = select(0u, y - ap.radius, y >= ap.radius);
    let x_first = select(0u, x - ap.radius, x >= ap.radius);
    let y_last = min(y + ap.radius, ap.height - 1u);
    let x_last = min(x + ap.radius, ap.width - 1u);
    var sum = 0.0;
    var count = 0.0;
    for (var ny = y_first; ny <= y_last; ny++) {
        for (var nx = x_first; nx <= x_last; nx++) {
            sum += average_src[(ny * ap.width + nx) * ap.dims + k];
            count += 1.0;
        }
    }
    average_dst[index] = sum / count;
}
