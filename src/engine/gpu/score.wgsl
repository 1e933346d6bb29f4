// Scoring family: PaDiM's Mahalanobis distance and PatchCore's nearest neighbour, for
// every patch of a grid at once (src/engine/padim.rs, src/engine/patchcore.rs).
//
// Patch grids are positions x dims, row-major. Large models are split on the host into
// chunks that each fit one storage binding; every kernel works on one chunk.

const BIG: f32 = 3.0e38;

// ---------------------------------------------------------------------------------------
// PaDiM: score = |L^-1 (x - mean)|, with L^-1 stored per position as a packed lower
// triangle (row i holds columns 0..=i and starts at i * (i + 1) / 2). One workgroup per
// position: the centred patch goes to workgroup memory, each invocation takes every 64th
// row of the triangle, and the squared row results are summed by a tree reduction.

struct PadimParams {
    // Positions in this chunk and the grid position of its first one.
    positions: u32,
    first_position: u32,
    dims: u32,
    tri_len: u32,
}

@group(0) @binding(0) var<storage, read> padim_patches: array<f32>;
@group(0) @binding(1) var<storage, read> padim_mean: array<f32>;
@group(0) @binding(2) var<storage, read> padim_inv_chol: array<f32>;
@group(0) @binding(3) var<storage, read_write> padim_scores: array<f32>;
@group(0) @binding(4) var<uniform> padim_params: PadimParams;

const PADIM_GROUP: u32 = 64u;
// Must match MAX_PADIM_DIMS in score.rs.
const PADIM_MAX_DIMS: u32 = 2048u;

var<workgroup> centred: array<f32, PADIM_MAX_DIMS>;
var<workgroup> row_sums: array<f32, PADIM_GROUP>;

@compute @workgroup_size(64)
fn padim(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let local_position = wid.y * groups.x + wid.x;
    // Uniform across the workgroup, so leaving before the barriers is allowed.
    if local_position >= padim_params.positions {
        return;
    }
    let d = padim_params.dims;
    let position = padim_params.first_position + local_position;
    for (var k = lid; k < d; k += PADIM_GROUP) {
        centred[k] = padim_patches[position * d + k] - padim_mean[local_position * d + k];
    }
    workgroupBarrier();

    let triangle = local_position * padim_params.tri_len;
    var sum = 0.0;
    for (var i = lid; i < d; i += PADIM_GROUP) {
        let row = triangle + i * (i + 1u) / 2u;
        var y = 0.0;
        for (var j = 0u; j <= i; j++) {
            y += padim_inv_chol[row + j] * centred[j];
        }
        sum += y * y;
    }
    row_sums[lid] = sum;
    workgroupBarrier();
    for (var stride = PADIM_GROUP / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            row_sums[lid] += row_sums[lid + stride];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        padim_scores[position] = sqrt(row_sums[0]);
    }
}

// ---------------------------------------------------------------------------------------
// PatchCore, pass 1: for a tile of 16 patches and one slice of the memory bank, the
// minimum over the slice of |b|^2 - 2 q.b (|q|^2 is added in pass 2, as on the CPU).
// Dot products are computed 16 x 16 at a time from tiles staged in workgroup memory.

struct NearestParams {
    patches: u32,
    dims: u32,
    // Bank rows in this chunk, rows per slice, and the index of the chunk's first slice
    // among all slices (the row of the partial-minimum matrix it writes).
    bank_rows: u32,
    slice_len: u32,
    first_slice: u32,
    patch_tiles: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(10) var<storage, read> nn_patches: array<f32>;
@group(0) @binding(11) var<storage, read> nn_bank: array<f32>;
@group(0) @binding(12) var<storage, read> nn_bank_norms: array<f32>;
@group(0) @binding(13) var<storage, read_write> nn_partial: array<f32>;
@group(0) @binding(14) var<uniform> nn_params: NearestParams;

const TILE: u32 = 16u;

// One extra column so reading along a row of the other operand avoids bank conflicts.
var<workgroup> tile_patches: array<array<f32, 17>, 16>;
var<workgroup> tile_bank: array<array<f32, 17>, 16>;
var<workgroup> tile_best: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn nearest_partial(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let np = nn_params;
    let linear = wid.y * groups.x + wid.x;
    let slices = (np.bank_rows + np.slice_len - 1u) / np.slice_len;
    if linear >= np.patch_tiles * slices {
        return;
    }
    let patch_tile = linear % np.patch_tiles;
    let slice = linear / np.patch_tiles;
    let slice_start = slice * np.slice_len;
    let slice_end = min(slice_start + np.slice_len, np.bank_rows);
    // This invocation owns patch q (row of the tile) against bank row b (column).
    let q = patch_tile * TILE + lid.y;

    var best = BIG;
    for (var b0 = slice_start; b0 < slice_end; b0 += TILE) {
        var dot = 0.0;
        for (var k0 = 0u; k0 < np.dims; k0 += TILE) {
            let k = k0 + lid.x;
            var qv = 0.0;
            if q < np.patches && k < np.dims {
                qv = nn_patches[q * np.dims + k];
            }
            tile_patches[lid.y][lid.x] = qv;
            let row = b0 + lid.y;
            var bv = 0.0;
            if row < slice_end && k < np.dims {
                bv = nn_bank[row * np.dims + k];
            }
            tile_bank[lid.y][lid.x] = bv;
            workgroupBarrier();
            // Ascending dims, like the CPU dot product.
            let steps = min(TILE, np.dims - k0);
            for (var kk = 0u; kk < steps; kk++) {
                dot += tile_bank[lid.x][kk] * tile_patches[lid.y][kk];
            }
            workgroupBarrier();
        }
        let b = b0 + lid.x;
        if b < slice_end {
            best = min(best, nn_bank_norms[b] - 2.0 * dot);
        }
    }
    tile_best[lid.y][lid.x] = best;
    workgroupBarrier();
    if lid.x == 0u && q < np.patches {
        var m = tile_best[lid.y][0];
        for (var i = 1u; i < TILE; i++) {
            m = min(m, tile_best[lid.y][i]);
        }
        nn_partial[(np.first_slice + slice) * np.patches + q] = m;
    }
}

// ---------------------------------------------------------------------------------------
// PatchCore, pass 2: the minimum over all slices, plus |q|^2, clamped at zero (rounding
// can make a tiny squared distance negative), square-rooted.

struct FinishParams {
    patches: u32,
    dims: u32,
    slices: u32,
    _pad: u32,
}

@group(0) @binding(20) var<storage, read> finish_patches: array<f32>;
@group(0) @binding(21) var<storage, read> finish_partial: array<f32>;
@group(0) @binding(22) var<storage, read_write> finish_scores: array<f32>;
@group(0) @binding(23) var<uniform> finish_params: FinishParams;

const FINISH_GROUP: u32 = 64u;

@compute @workgroup_size(64)
fn nearest_finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let fp = finish_params;
    let q = (wid.y * groups.x + wid.x) * FINISH_GROUP + lid;
    if q >= fp.patches {
        return;
    }
    var best = BIG;
    for (var s = 0u; s < fp.slices; s++) {
        best = min(best, finish_partial[s * fp.patches + q]);
    }
    var norm = 0.0;
    for (var k = 0u; k < fp.dims; k++) {
        let v = finish_patches[q * fp.dims + k];
        norm += v * v;
    }
    finish_scores[q] = sqrt(max(norm + best, 0.0));
}
