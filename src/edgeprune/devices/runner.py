"""edgeprune's latency runner: times model files in alternation on the machine it runs on, prints one JSON line.

    python runner.py --runtime onnxruntime --shape 1,28,28 --batch 1 --threads 1 --rounds 20 dense.onnx small.onnx
    python runner.py --runtime executorch op1.pte op2.pte      # no --shape: each file's own static input shape
    python runner.py --check          # the runtimes this machine has, its cores and CPU

edgeprune copies this one file to a device (``ssh://`` devices) or runs it in a command (``cmd:`` devices), so it
imports nothing of edgeprune and only the standard library at start; numpy, ONNX Runtime or ExecuTorch (with torch)
(OpenVINO, LiteRT) are imported when a file of theirs is timed. The loop is edgeprune's timer (``measure.latency.time_rounds``) in
miniature: warm-up calls of each file, then rounds in which each file runs in turn, so a change of the device's
load moves every file alike; where several files alternate, each runs a block of at least ``--block-ms`` per round
(the block's median is the round's time), warm as a deployed model runs. Output: ``{"times_ms": [[ms per round] per file, in order], "runtime", "version",
"threads", "batch", "cores", "cpu", "python"}``; a failure is ``{"error": "one line"}`` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


MODULES = {"onnxruntime": "onnxruntime", "executorch": "executorch.runtime", "openvino": "openvino",
           "litert": "ai_edge_litert.interpreter"}
DISTRIBUTIONS = {"litert": "ai-edge-litert"}  # where the module's name is not the package's


def _versions(runtimes=tuple(MODULES)) -> dict:
    """{runtime: version} of the ``runtimes`` this machine can import."""
    found = {}
    for runtime in runtimes:
        module = MODULES[runtime]
        try:
            lib = __import__(module, fromlist=["_"])
            found[runtime] = getattr(lib, "__version__", None) or _dist_version(DISTRIBUTIONS.get(runtime, runtime))
        except Exception:  # noqa: BLE001  (absent or broken: not available on this machine)
            continue
    return found


def _dist_version(name: str) -> str:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version(name)
    except Exception:  # noqa: BLE001
        return "unknown"


def _onnx_call(path: str, shape: tuple | None, batch: int, threads: int):
    """``shape`` None: the file's own static input shape, batch included (latency tables' one-operator files)."""
    import numpy as np  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0]
    full = (batch, *shape) if shape is not None else tuple(declared.shape)
    if not all(isinstance(d, int) and d > 0 for d in full):
        raise ValueError(f"{os.path.basename(path)} has a symbolic input shape {declared.shape}; give --shape")
    feed = {declared.name: np.random.default_rng(0).standard_normal(full).astype(np.float32)}
    return lambda: session.run(None, feed)


def _executorch_call(path: str, shape: tuple | None, batch: int, threads: int):
    """``shape`` None: the program's own static input shape, batch included (latency tables' one-operator files)."""
    import torch  # noqa: PLC0415
    from executorch.runtime import Runtime  # noqa: PLC0415

    try:  # XNNPACK's pool size; absent in some builds, where the runtime picks its own
        from executorch.extension.pybindings import portable_lib  # noqa: PLC0415

        if int(portable_lib._threadpool_get_thread_count()) != threads:
            portable_lib._unsafe_reset_threadpool(threads)
    except Exception:  # noqa: BLE001
        pass
    method = Runtime.get().load_program(path).load_method("forward")
    full = (batch, *shape) if shape is not None else tuple(method.metadata.input_tensor_meta(0).sizes())
    x = torch.randn(full, generator=torch.Generator().manual_seed(0))
    return lambda: method.execute([x])


def _openvino_call(path: str, shape: tuple | None, batch: int, threads: int):
    """An IR (``.xml`` with its ``.bin`` beside it) compiled as edgeprune compiles it: FP32, the LATENCY hint.
    ``shape`` None: the IR's own input shape, a dynamic dimension (the batch) at ``batch``."""
    import numpy as np  # noqa: PLC0415
    import openvino as ov  # noqa: PLC0415

    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    compiled = ov.Core().compile_model(path, "CPU", config)
    full = ((batch, *shape) if shape is not None else
            tuple(d.get_length() if d.is_static else batch for d in compiled.inputs[0].get_partial_shape()))
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal(full).astype(np.float32)
    return lambda: request.infer({0: x})


def _litert_call(path: str, shape: tuple | None, batch: int, threads: int):
    """A ``.tflite`` program in LiteRT's interpreter; it runs the one input shape it was converted at."""
    import numpy as np  # noqa: PLC0415
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    name, details = next(iter(runner.get_input_details().items()))
    if int(details["shape"][0]) != batch:
        raise ValueError(f"{os.path.basename(path)} was converted with a fixed batch of {int(details['shape'][0])}; "
                         f"cannot time batch {batch}")
    x = np.random.default_rng(0).standard_normal(tuple(details["shape"])).astype(details["dtype"])
    return lambda: runner(**{name: x})


CALLS = {"onnxruntime": _onnx_call, "executorch": _executorch_call, "openvino": _openvino_call, "litert": _litert_call}


def time_files(files: list[str], runtime: str, shape: tuple, batch: int = 1, threads: int = 1, rounds: int = 20,
               warmup: int = 5, block_ms: float = 10.0) -> dict:
    """Per-round milliseconds of each file, the files run in turn per round after ``warmup`` calls each: one call
    each, or where several files alternate, as many as take ``block_ms`` (the median of the block)."""
    calls = [CALLS[runtime](f, shape, batch, threads) for f in files]
    counts = []
    for call in calls:
        warm = [_timed(call) for _ in range(max(warmup, 1))]
        block = len(files) > 1 and block_ms > 0
        counts.append(max(1, min(1000, math.ceil(block_ms / max(statistics.median(warm), 1e-6)))) if block else 1)
    times: list[list[float]] = [[] for _ in files]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            times[i].append(statistics.median(_timed(call) for _ in range(counts[i])))
    return {"times_ms": times, "runtime": runtime, "version": _versions((runtime,)).get(runtime, "unknown"), "threads": threads,
            "batch": batch, **machine()}


def _timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1e3


def machine() -> dict:
    return {"cores": os.cpu_count(), "cpu": _cpu(), "python": platform.python_version(), "platform": platform.platform()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Time model files in alternation; one JSON line.")
    parser.add_argument("files", nargs="*")
    parser.add_argument("--check", action="store_true", help="print the runtimes, cores and CPU of this machine")
    parser.add_argument("--runtime", choices=sorted(CALLS), default="onnxruntime")
    parser.add_argument("--shape", default="", help="one example's shape without the batch, e.g. 3,32,32 (default: each file's own, batch included)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--block-ms", type=float, default=10.0, help="alternating files: each runs this long per round")
    args = parser.parse_args(argv)
    try:
        if args.check:
            out = {"runtimes": _versions(), **machine()}
        else:
            if not args.files or min(args.batch, args.threads, args.rounds) < 1 or min(args.warmup, args.block_ms) < 0:
                raise ValueError("give files and positive --batch/--threads/--rounds")
            shape = tuple(int(d) for d in args.shape.split(",")) if args.shape else None
            out = time_files(args.files, args.runtime, shape, args.batch, args.threads, args.rounds, args.warmup, args.block_ms)
    except Exception as exc:  # noqa: BLE001  (the caller gets one line, whatever failed on the device)
        text = " ".join(str(exc).split())[:300]
        print(json.dumps({"error": f"{type(exc).__name__}: {text}"}))
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
