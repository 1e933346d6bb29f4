// Convolution family: direct 2-D convolution (regular and grouped/depthwise), the 1x1
// convolution as a tiled matrix product, and the residual add.
//
// Each entry point has its own binding numbers (conv2d 0-4, matmul 10-14, add 20-23) and
// its own explicit bind group layout on the Rust side, so the three never have to agree
// on a parameter struct.
//
// Large dispatches are folded into a 2-D grid of workgroups (at most 65535 per
// dimension); the linear workgroup index is wid.y * num_workgroups.x + wid.x.

// The fused activation is a clamp (ReLU, ReLU6, Clip) when `on` is set.
fn activate(v: f32, on: u32, lo: f32, hi: f32) -> f32 {
    if on != 0u {
        return clamp(v, lo, hi);
    }
    return v;
}

// ---------------------------------------------------------------------------------------
// conv2d: NCHW, batch 1, weights OIHW with I = in_channels / groups, SAME padding decided
// on the host (pad_top / pad_left; the remainder falls at the bottom / right).

struct ConvParams {
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    groups: u32,
    has_bias: u32,
    act_on: u32,
    act_lo: f32,
    act_hi: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> conv_input: array<f32>;
@group(0) @binding(1) var<storage, read> conv_weight: array<f32>;
@group(0) @binding(2) var<storage, read> conv_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> conv_output: array<f32>;
@group(0) @binding(4) var<uniform> conv_params: ConvParams;

const CONV_GROUP: u32 = 64u;

@compute @workgroup_size(64)
fn conv2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = (wid.y * groups.x + wid.x) * CONV_GROUP + lid;
    let plane = conv_params.out_height * conv_params.out_width;
    if index >= conv_params.out_channels * plane {
        return;
    }
    let oc = index / plane;
    let oy = (index % plane) / conv_params.out_width;
    let ox = index % conv_params.out_width;

    let in_per_group = conv_params.in_channels / conv_params.groups;
    let out_per_group = conv_params.out_channels / conv_params.groups;
    let first_in = (oc / out_per_group) * in_per_group;
    // Signed, because the window starts in the padding at the top-left border.
    let y0 = i32(oy * conv_params.stride_h) - i32(conv_params.pad_top);
    let x0 = i32(ox * conv_params.stride_w) - i32(conv_params.pad_left);
    let taps = conv_params.kernel_h * conv_params.kernel_w;

    var sum = 0.0;
    for (var ci = 0u; ci < in_per_group; ci++) {
        let in_plane = (first_in + ci) * conv_params.in_height * conv_params.in_width;
        let w_base = (oc * in_per_group + ci) * taps;
        for (var ky = 0u; ky < conv_params.kernel_h; ky++) {
            let y = y0 + i32(ky);
            if y < 0 || y >= i32(conv_params.in_height) {
                continue;
            }
            let row = in_plane + u32(y) * conv_params.in_width;
            for (var kx = 0u; kx < conv_params.kernel_w; kx++) {
                let x = x0 + i32(kx);
                if x < 0 || x >= i32(conv_params.in_width) {
                    continue;
                }
                sum += conv_input[row + u32(x)] * conv_weight[w_base + ky * conv_params.kernel_w + kx];
            }
        }
    }
    if conv_params.has_bias != 0u {
        sum += conv_bias[oc];
    }
    conv_output[index] = activate(sum, conv_params.act_on, conv_params.act_lo, conv_params.act_hi);
}

// ---------------------------------------------------------------------------------------
// matmul: C (m x n) = A (m x k) * B (k x n), all row-major, plus an optional bias per row
// of C and an activation. A 1x1 convolution is weight (out x in) * input (in x h*w).
// Each 16x16 workgroup computes one 16x16 tile of C, staging 16x16 tiles of A and B in
// workgroup memory so every value is read from storage once per tile, not once per use.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    // Column tiles of C, to unfold the 2-D dispatch grid.
    col_tiles: u32,
    act_on: u32,
    act_lo: f32,
    act_hi: f32,
}

@group(0) @binding(10) var<storage, read> mat_a: array<f32>;
@group(0) @binding(11) var<storage, read> mat_b: array<f32>;
@group(0) @binding(12) var<storage, read> mat_bias: array<f32>;
@group(0) @binding(13) var<storage, read_write> mat_c: array<f32>;
@group(0) @binding(14) var<uniform> mat_params: MatmulParams;

const TILE: u32 = 16u;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
// One extra column so reading a column of the tile does not hit the same memory bank.
var<workgroup> tile_b: array<array<f32, 17>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.y * groups.x + wid.x;
    let row_tiles = (mat_params.m + TILE - 1u) / TILE;
    // Surplus groups of a folded grid: uniform across the workgroup, so leaving before the
    // barriers below is allowed.
    if tile >= row_tiles * mat_params.col_tiles {
        return;
    }
    let row = (tile / mat_params.col_tiles) * TILE + lid.y;
    let col = (tile % mat_params.col_tiles) * TILE + lid.x;

    var sum = 0.0;
    for (var k0 = 0u; k0 < mat_params.k; k0 += TILE) {
        let ka = k0 + lid.x;
        var a = 0.0;
        if row < mat_params.m && ka < mat_params.k {
            a = mat_a[row * mat_params.k + ka];
        }
        tile_a[lid.y][lid.x] = a;
        let kb = k0 + lid.y;
        var b = 0.0;
        if kb < mat_params.k && col < mat_params.n {
            b = mat_b[kb * mat_params.n + col];
        }
        tile_b[lid.y][lid.x] = b;
        workgroupBarrier();
        // Ascending k, like the CPU loops, so rounding follows the same order.
        let steps = min(TILE, mat_params.k - k0);
        for (var kk = 0u; kk < steps; kk++) {
            sum += tile_a[lid.y][kk] * tile_b[kk][lid.x];
        }
        workgroupBarrier();
    }
    if row < mat_params.m && col < mat_params.n {
        if mat_params.has_bias != 0u {
            sum += mat_bias[row];
        }
        mat_c[row * mat_params.n + col] = activate(sum, mat_params.act_on, mat_params.act_lo, mat_params.act_hi);
    }
}

// ---------------------------------------------------------------------------------------
// add: out = a + b, elementwise (the residual connection of an inverted-bottleneck block).

struct AddParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(20) var<storage, read> add_a: array<f32>;
@group(0) @binding(21) var<storage, read> add_b: array<f32>;
@group(0) @binding(22) var<storage, read_write> add_out: array<f32>;
@group(0) @binding(23) var<uniform> add_params: AddParams;

const ADD_GROUP: u32 = 256u;

@compute @workgroup_size(256)
fn residual_add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * groups.x + wid.x) * ADD_GROUP + lid;
    if i < add_params.len {
        add_out[i] = add_a[i] + add_b[i];
    }
}
