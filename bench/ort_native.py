"""onnxruntime on the CPU, one thread, timed on the backbone: the native peer of
`damagelens bench` (run by `cargo xtask bench`; prints JSON).

usage: ort_native.py MODEL.onnx TENSOR.f32 SIZE RUNS OUTPUT [OUTPUT ...]
TENSOR.f32 is the preprocessed input `damagelens bench --tensor-out` wrote, so both
runtimes see the same numbers.
"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    model, tensor, size, runs, outputs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
    x = np.fromfile(tensor, dtype="<f4").reshape(1, 3, size, size)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(outputs, {name: x})  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(outputs, {name: x})
        times.append((time.perf_counter() - start) * 1000.0)
    print(json.dumps({
        "backbone_ms": {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": runs},
        "version": ort.__version__,
        "threads": 1,
    }, indent=2))


if __name__ == "__main__":
    main()
