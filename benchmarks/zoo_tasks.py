"""The task contract: every segmentation and detection model we build goes through the stages of
``edgeprune.api_contract.TASK_STAGES`` under its task, each ending in pass, a one-line refusal, ``none`` or ``n/a``.

    python benchmarks/zoo_tasks.py                        # resumable: rows in results/zoo_tasks.jsonl
    python benchmarks/zoo_tasks.py --specs yolo:yolov8n   # some models only
    python benchmarks/zoo_tasks.py --report-only          # rebuild results/zoo_tasks.json and sections/zoo_tasks.md
    python benchmarks/zoo_tasks.py --stages prune:mix_and_match,prune:structured --results zoo_tasks_api
                                                          # through the public API (edgeprune.prune, default options)

Models: every torchvision segmentation and detection builder (Mask and Keypoint R-CNN are refused: their targets
need masks or keypoints), Ultralytics YOLOv8n / YOLO11n, HF DETR and YOLOS from small local configs, six
segmentation-models-pytorch U-Nets, SegFormer-b0 from a local config and the zoo's unet-tiny; 1-channel inputs, 64 px
for segmentation and 128 px for detection, random weights, one process per model, one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT  # noqa: E402
from zoo_api import report  # noqa: E402

SMP = ["smp:unet-resnet18", "smp:unet-resnet34", "smp:unet-mobilenet_v2", "smp:unet-efficientnet-b0",
       "smp:unet-tu-mobilenetv3_large_100", "smp:unet-mobileone_s0"]
OTHER_SEG = ["unet-tiny", "hf-config:segformer-b0"]
YOLO = ["yolo:yolov8n", "yolo:yolo11n"]
HF_DET = ["hf-config:detr", "hf-config:yolos"]
REFUSED = ("maskrcnn", "keypointrcnn")  # targets with masks / keypoints: not the detection task's boxes
SIZE = {"segmentation": 64, "detection": 128}
LARGER = (300, 512)  # sizes tried when a model cannot take its task's size (SSD300-VGG16's extra layers need 300 px)
CLASSES = 11  # 10 digits and the background, as mnist-seg / mnist-det


def torchvision_specs(module: str) -> list[str]:
    import torchvision.models as tv  # noqa: PLC0415  (the zoo extra)

    names = tv.list_models(module=getattr(tv, module))
    return [f"torchvision:{n}" for n in sorted(names) if not n.startswith(REFUSED)]


def all_specs() -> dict[str, str]:
    """spec -> task, light models first within each task."""
    seg = OTHER_SEG + torchvision_specs("segmentation") + SMP
    det = YOLO + HF_DET + torchvision_specs("detection")
    return {**dict.fromkeys(seg, "segmentation"), **dict.fromkeys(det, "detection")}


def worker(spec: str, task: str, stages: tuple[str, ...]) -> dict:
    import torch  # noqa: PLC0415

    from edgeprune import models  # noqa: PLC0415
    from edgeprune.api_contract import check_api  # noqa: PLC0415

    torch.set_num_threads(1)
    started = time.perf_counter()
    for size in (SIZE[task], *LARGER):
        try:
            model = models.create(spec, num_classes=CLASSES, in_channels=1, image_size=size).eval()
            break
        except Exception as exc:  # noqa: BLE001  (a builder that fails is a row, not a crash of the run)
            error = f"{type(exc).__name__}: {exc}"[:300]
    else:
        return {"spec": spec, "task": task, "build": "error", "note": error}
    outcomes = check_api(model, torch.zeros(1, 1, size, size), stages, task=task)
    return {"spec": spec, "task": task, "build": "ok", "image_size": size,
            "stages": {o.stage: o.as_dict() for o in outcomes}, "seconds": time.perf_counter() - started}


def run_one(spec: str, task: str, stages: tuple[str, ...], time_box: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", spec, "--task", task, "--stages", ",".join(stages)],
                              capture_output=True, text=True, timeout=time_box, env=env, cwd=ROOT.parent)
    except subprocess.TimeoutExpired:
        return {"spec": spec, "task": task, "build": "timeout", "note": f"did not finish within {time_box:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"spec": spec, "task": task, "build": "crash", "note": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(lines[-1])


def main(argv=None) -> None:
    from edgeprune.api_contract import API_STAGES, TASK_STAGES  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--task", choices=sorted(SIZE))
    parser.add_argument("--stages", default=",".join(TASK_STAGES))
    parser.add_argument("--specs", help="only these models (comma-separated)")
    parser.add_argument("--time-box", type=float, default=1200.0, help="seconds a model may take in all")
    parser.add_argument("--results", default="zoo_tasks")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--rerun", default="", help="models to run again (comma-separated specs; with --stages, those "
                                                    "stages only, the others' outcomes kept)")
    args = parser.parse_args(argv)
    stages = tuple(args.stages.split(","))
    if args.worker:
        print(json.dumps(worker(args.worker, args.task, stages)), flush=True)
        return
    specs = all_specs()
    if args.specs:
        specs = {s: specs.get(s, "segmentation") for s in args.specs.split(",")}
    path = RESULTS / f"{args.results}.jsonl"
    rows = {}
    if path.exists():
        rows = {r["spec"]: r for r in map(json.loads, path.read_text().splitlines()) if r["spec"] in specs}
    rerun = [s for s in args.rerun.split(",") if s]
    if set(rerun) - set(specs):
        parser.error(f"--rerun: not in the list: {sorted(set(rerun) - set(specs))}")
    todo = [] if args.report_only else rerun or [s for s in specs if s not in rows]
    print(f"{len(specs)} models, {len(rows)} done, {len(todo)} to run", flush=True)
    for i, spec in enumerate(todo, 1):
        row = run_one(spec, specs[spec], stages, args.time_box)
        if "stages" in row and "stages" in rows.get(spec, {}):  # a rerun of some stages keeps the others' outcomes
            row["stages"] = {**rows[spec]["stages"], **row["stages"]}
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows[spec] = row
        brief = " ".join(f"{k}={v['status']}" for k, v in row.get("stages", {}).items())
        print(f"[{i}/{len(todo)}] {spec}: {brief or row.get('build')}", flush=True)
    tasks_of = {s: t for s, t in all_specs().items()}
    counts = {t: sum(tasks_of.get(s) == t for s in rows) for t in SIZE}
    larger = [f"{s} at {r['image_size']} px" for s, r in rows.items() if r.get("image_size", SIZE[tasks_of.get(s, "segmentation")])
              != SIZE[tasks_of.get(s, "segmentation")]]
    ran = tuple(s for s in dict.fromkeys((*TASK_STAGES, *API_STAGES, *stages))
                if any(s in r.get("stages", {}) for r in rows.values()))
    public = any(s in API_STAGES for s in ran)
    report(args.results, rows, ran, len(all_specs()), script="zoo_tasks.py",
           title="The task contract through the public API" if public else "The task contract",
           how=f"{counts['segmentation']} segmentation models at 1x64x64 and {counts['detection']} detectors at 1x128x128 "
               f"({', '.join(larger) or 'none'} where the task's size is too small) under their task, "
               + ("`edgeprune.prune(model, data, task=...)` with each method's default options on a few batches of random "
                  "images and targets" if public else
                  "stage level (roles; Mix-and-Match magnitude masks at 50 %; 30 % of the channels removed; VBP where there "
                  "is an MLP block; ONNX and ExecuTorch parity)")
               + ", random weights, one process per model, one thread.")

if __name__ == "__main__":
    main()
