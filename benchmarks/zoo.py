"""The zoo contract (edgeprune.runs.contract) over every torchvision classification model, >= 100 timm models
(every timm family: up to two small models per timm module) and every image classifier in transformers'
mapping (default configs made smaller where the config allows), at small inputs.

    python benchmarks/zoo.py                      # resumable: finished models are skipped
    python benchmarks/zoo.py --only torchvision --deadline 2026-11-30T11:05

Each model runs in its own process (one thread), time-boxed (--time-box seconds; every stage also stops
after 60 s). Rows go to results/zoo.jsonl as they finish; results/zoo.json and sections/zoo.md (the README
table) are rebuilt from them at the end, with the models that did not run listed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
JSONL = ROOT / "results" / "zoo.jsonl"
STAGES = ("roles", "mam50", "structured30", "vbp30", "reconvene90", "onnx")
EDGE_TIMEOUT = 300.0  # CPU seconds of an edge stage (a conversion), as benchmarks/edge_zoo.py gives it
STAGE_MARK, OUTCOME_MARK = "zoo-stage: ", "zoo-outcome: "  # a worker's stderr lines before and after each stage
NUM_CLASSES = 10

# words in timm names that mark the small members of a family (earlier = preferred)
_SMALL = ("atto", "femto", "pico", "nano", "xxs", "tiny", "xs", "small", "s0", "t0", "b0", "_050", "_075", "_100",
          "m0", "t8", "s12", "s16", "_18", "18", "26", "_s", "lite")
# timm edge models no family's first names reach
TIMM_EDGE = ("mobilenetv4_conv_small", "mobilenetv4_hybrid_medium")
# HF config keys shrunk when present (a smaller model of the same family; the config validates them)
_HF_SHRINK = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
              "embed_dim": 32, "width_coefficient": 0.25, "depth_coefficient": 0.25, "depth_multiplier": 0.25}


# ------------------------------------------------------------------------------------------------ lists


def torchvision_names() -> list[str]:
    import torchvision.models as tvm  # noqa: PLC0415  (benchmark script: optional library)

    return sorted(tvm.list_models(module=tvm))


def _small_first(name: str) -> tuple:
    for i, word in enumerate(_SMALL):
        if word in name:
            return (i, len(name), name)
    return (len(_SMALL), len(name), name)


def timm_names(minimum: int = 110) -> list[str]:
    """The smallest-named model of every timm module (family), then second ones until ``minimum``, then the edge
    models a module holds beside its namesake (MobileNetV4 lives in timm's mobilenetv3 module)."""
    import timm  # noqa: PLC0415  (benchmark script: optional library)

    ranked = {m: sorted(timm.list_models(module=m), key=_small_first) for m in timm.list_modules()}
    picked = [names[0] for names in ranked.values() if names]
    for names in ranked.values():
        if len(picked) >= minimum:
            break
        if len(names) > 1:
            picked.append(names[1])
    known = set(timm.list_models())
    return picked + [n for n in TIMM_EDGE if n in known and n not in picked]


def hf_names() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES  # noqa: PLC0415

    return sorted(MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)


def all_specs(only: str | None) -> list[str]:
    """Every model of the matrix, the three libraries interleaved (a run cut short still covers all three)."""
    lists = []
    if only in (None, "torchvision"):
        lists.append([f"torchvision:{n}" for n in torchvision_names()])
    if only in (None, "hf"):
        lists.append([f"hf-config:{n}" for n in hf_names()])
    if only in (None, "timm"):
        lists.append([f"timm:{n}" for n in timm_names()])
    specs = []
    for i in range(max(map(len, lists), default=0)):
        specs += [names[i] for names in lists if i < len(names)]
    return sorted(specs, key=_heavy)  # stable: the light models of all three libraries first


_HEAVY = ("large", "huge", "giant", "_h_", "_h14", "_l_", "_l16", "_l32", "128gf", "64gf", "32gf", "16gf", "b7", "b6",
          "b5", "v2_l", "v2_m", "_base", "vit_b", "swin_b", "swin_v2_b", "convnext_b", "maxvit", "wide_resnet",
          "resnet152", "resnext101", "vgg19", "vgg16", "densenet161", "8gf", "deepseek", "qwen", "gemma", "clip",
          "siglip", "perceiver", "imagegpt", "shieldgemma", "metaclip")


def _heavy(spec: str) -> int:
    """1 for models known to be large (run last: a run cut short by its deadline covers the most models)."""
    return int(any(word in spec for word in _HEAVY))


# ----------------------------------------------------------------------------------------------- worker


def _hf_overrides(model_type: str) -> dict:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING  # noqa: PLC0415

    config = CONFIG_MAPPING[model_type]().to_dict()
    out = {k: v for k, v in _HF_SHRINK.items() if k in config}
    for key in ("depths", "depth"):
        if isinstance(config.get(key), list):
            out[key] = [1] * len(config[key])
    return out


def _torchvision_crop(name: str) -> int:
    """The side torchvision's weights are evaluated at (299 for Inception-v3, whose auxiliary head needs it), else 224."""
    try:
        import torchvision.models as tv  # noqa: PLC0415

        return int(tv.get_model_weights(name).DEFAULT.transforms().crop_size[0])
    except Exception:  # noqa: BLE001  (a builder without registered weights)
        return 224


def _trains_at(model, size: int) -> None:
    """Raise if a training-mode batch of two does not run (Inception's auxiliary head at 224 px); the model's
    buffers (batch-norm statistics) are left as they were."""
    import torch  # noqa: PLC0415

    from edgeprune.surgery.graph import in_mode  # noqa: PLC0415

    with in_mode(model, True, after=False), torch.no_grad():
        model(torch.zeros(2, 3, size, size))


def build(spec: str):
    """(model, image size, how it was built) for ``spec``: the smallest setting that builds and runs."""
    from edgeprune import models  # noqa: PLC0415

    kind, _, name = spec.partition(":")
    attempts: list[tuple[int, dict]] = []
    if kind == "hf-config":
        shrink = _hf_overrides(name)
        attempts = [(64, shrink), (64, {}), (224, {})] if shrink else [(64, {}), (224, {})]
    elif kind == "timm":
        import timm  # noqa: PLC0415

        cfg = timm.get_pretrained_cfg(name)
        native = int(cfg.input_size[-1]) if cfg is not None and getattr(cfg, "input_size", None) else 224
        attempts = [(64, {"img_size": 64}), (64, {}), (native, {})]
    else:
        attempts = [(64, {}), (64, {"image_size": 64}), (_torchvision_crop(name), {})]
    last = None
    while attempts:
        size, options = attempts.pop(0)
        try:
            model = models.create(spec, num_classes=NUM_CLASSES, in_channels=3, image_size=size, **options)
            _trains_at(model, size)
            return model, size, options
        except Exception as exc:  # noqa: BLE001  (the next, larger setting may build)
            last = exc
            # a patch size that does not divide 64 (DeepSeek-ViT's 14): the next multiple of it, before the native size
            patch = re.search(r"divisible by (?:the )?(?:patch size )?\(?(\d+)\)?", str(exc))
            if patch and size == 64 and "img_size" in options:
                fit = -(-64 // int(patch.group(1))) * int(patch.group(1))
                attempts.insert(0, (fit, {"img_size": fit}))
    raise last


def worker(spec: str, stages: tuple[str, ...] = STAGES, api_box: float | None = None) -> dict:
    import torch  # noqa: PLC0415

    from edgeprune.api_contract import API_STAGES, API_TIMEOUT  # noqa: PLC0415  (registers the public-API stages)
    from edgeprune.errors import EdgepruneError  # noqa: PLC0415
    from edgeprune.measure import param_count  # noqa: PLC0415
    from edgeprune.runs.contract import EDGE_STAGES, TIMEOUT, informative, run_stage  # noqa: PLC0415

    torch.set_num_threads(1)
    torch.manual_seed(0)
    row = {"spec": spec, "family": family_of(spec)}
    t0 = time.perf_counter()
    try:
        model, size, options = build(spec)
    except EdgepruneError as exc:
        return {**row, "build": "refused", "note": str(exc)[:300], "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001  (a library that cannot build its own model at any size)
        return {**row, "build": "fail", "note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:250] if str(exc) else ''}",
                "seconds": time.perf_counter() - t0}
    row.update({"build": "ok", "image_size": size, "options": options, "params": param_count(model)})
    example = torch.zeros(1, 3, size, size)
    changed = informative(model, example)
    if changed:
        row["informative"] = "; ".join(changed)
    boxes = {**dict.fromkeys(API_STAGES, api_box or API_TIMEOUT), **dict.fromkeys(EDGE_STAGES, EDGE_TIMEOUT)}
    outcomes = []
    for s in stages:  # each stage announced and its outcome said on stderr: what run_one keeps should the process be killed
        print(f"{STAGE_MARK}{s}", file=sys.stderr, flush=True)
        outcomes.append(run_stage(s, model, example, timeout=boxes.get(s, TIMEOUT)))
        print(f"{OUTCOME_MARK}{json.dumps(outcomes[-1].as_dict())}", file=sys.stderr, flush=True)
    row["stages"] = {o.stage: o.as_dict() for o in outcomes}
    row["seconds"] = time.perf_counter() - t0
    return row


def family_of(spec: str) -> str:
    kind, _, name = spec.partition(":")
    if kind == "timm":
        try:
            import timm  # noqa: PLC0415
            from timm.models import get_pretrained_cfg  # noqa: F401,PLC0415
            return f"timm/{timm.models._registry._model_to_module.get(name, '?')}"  # noqa: SLF001
        except Exception:  # noqa: BLE001
            return "timm/?"
    if kind == "torchvision":
        base = name.split("_")[0].rstrip("0123456789")
        return f"torchvision/{base}"
    return f"hf/{name}"


# ----------------------------------------------------------------------------------------------- driver


def done_specs(path: Path = JSONL) -> dict[str, dict]:
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: that model runs again
            rows[row["spec"]] = row
    return rows


def run_one(spec: str, time_box: float, stages: tuple[str, ...] = STAGES, api_box: float | None = None) -> dict:
    """``spec``'s stages in a worker process; ``api_box``: CPU seconds of each public-API stage, if not API_TIMEOUT."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    box = ["--api-box", str(api_box)] if api_box else []
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", spec, "--stages", ",".join(stages), *box],
                              capture_output=True, text=True,
                              timeout=time_box, env=env, cwd=ROOT.parent)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return _stopped(spec, err, f"did not finish within the {time_box:g} s time box", "timeout", time_box)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        killed = f"killed by signal {-proc.returncode}" + (" (SIGKILL: the kernel's out-of-memory killer?)"
                                                           if proc.returncode == -9 else "")
        silent = killed if proc.returncode < 0 else f"exit code {proc.returncode} and no result line on stdout"
        said = [e for e in proc.stderr.strip().splitlines() if not e.startswith((STAGE_MARK, OUTCOME_MARK))]
        return _stopped(spec, proc.stderr, said[-1][:300] if said else silent, "crash", None)
    return json.loads(lines[-1])


def _stopped(spec: str, stderr: str, why: str, build: str, seconds: float | None) -> dict:
    """The row of a worker that ended without its result line (killed, or stopped at the model's time box): the
    stages it finished, from what it said on stderr, and the stage it was in, failed with ``why``; ``build``
    (``timeout`` or ``crash``) if it had not started a stage."""
    err = stderr.strip().splitlines()
    outcomes = {o["stage"]: o for o in (json.loads(e[len(OUTCOME_MARK):]) for e in err if e.startswith(OUTCOME_MARK))}
    stage = next((e[len(STAGE_MARK):] for e in reversed(err) if e.startswith(STAGE_MARK)), None)
    if stage is None:
        return {"spec": spec, "family": family_of(spec), "build": build, "note": why, "seconds": seconds}
    outcomes.setdefault(stage, {"stage": stage, "status": "fail", "seconds": None, "note": why})
    return {"spec": spec, "family": family_of(spec), "build": "ok", "note": f"{why} in stage {stage}",
            "seconds": seconds, "stages": outcomes}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--only", choices=["torchvision", "timm", "hf"])
    parser.add_argument("--time-box", type=float, default=300.0)
    parser.add_argument("--api-box", type=float, help="CPU seconds of each public-API stage (worker option)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--deadline", help="UTC time (ISO) after which no new model starts")
    parser.add_argument("--specs", help="only these models (comma-separated specs, e.g. timm:densenet264d)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages a worker runs (comma-separated); the public-API stages prune:METHOD[:channel] call edgeprune.prune with default options")
    parser.add_argument("--redo", help="re-run these stages (comma-separated) of finished models where they did not "
                                       "pass and applied, keeping the other stages' results; then run the models not yet done")
    parser.add_argument("--redo-passed", action="store_true",
                        help="--redo re-runs its stages where they passed too (after a change to how models are built)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, tuple(args.stages.split(",")), args.api_box)), flush=True)
        return
    specs = all_specs(args.only) if not args.report_only else []
    if args.specs:
        unknown = sorted(set(args.specs.split(",")) - set(specs))
        if unknown:
            parser.error(f"--specs: not in the zoo's list: {', '.join(unknown)}")
        specs = [s for s in specs if s in args.specs.split(",")]
    deadline = datetime.fromisoformat(args.deadline).replace(tzinfo=timezone.utc) if args.deadline else None
    done = done_specs()
    redo = tuple(args.redo.split(",")) if args.redo else ()
    from edgeprune.api_contract import API_STAGES  # noqa: PLC0415
    from edgeprune.runs.contract import EDGE_STAGES  # noqa: PLC0415

    known = (*STAGES, *API_STAGES, *EDGE_STAGES)
    unknown = (set(redo) | set(args.stages.split(","))) - set(known)
    if unknown:
        parser.error(f"--redo/--stages: unknown stage(s) {sorted(unknown)}; allowed: {', '.join(known)}")
    settled = ("pass", "n/a") if not args.redo_passed else ()

    def stale(spec: str) -> tuple[str, ...]:
        return tuple(st for st in redo if done[spec]["stages"].get(st, {}).get("status") not in settled)

    again = [s for s in specs if s in done and done[s].get("build") == "ok" and stale(s)]
    if redo:  # a model whose worker timed out or crashed has no stage to keep: it runs again as a whole
        for s in specs:
            if done.get(s, {}).get("build") in ("timeout", "crash"):
                del done[s]
    todo = again + [s for s in specs if s not in done]
    print(f"{len(specs)} models, {len(done)} done, {len(again)} to redo ({','.join(redo)}), "
          f"{len(todo) - len(again)} to run", flush=True)
    JSONL.parent.mkdir(parents=True, exist_ok=True)
    running: list[tuple[str, subprocess.Popen]] = []
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    def task(spec):
        if deadline and datetime.now(timezone.utc) >= deadline:
            return None
        if spec in done:
            old = done[spec]
            new = run_one(spec, args.time_box, stale(spec))
            if new.get("build") != "ok":  # the earlier row stands
                print(f"{spec}: redo not run: {new.get('build')}: {new.get('note')}", flush=True)
                return None
            row = {**old, "informative": new.get("informative"), "stages": {**old["stages"], **new["stages"]},
                   "seconds": (old.get("seconds") or 0) + (new.get("seconds") or 0)}
        else:
            row = run_one(spec, args.time_box)
        with JSONL.open("a") as f:
            f.write(json.dumps(row) + "\n")
        brief = " ".join(f"{k}={v['status']}" for k, v in row.get("stages", {}).items()) or row.get("build")
        print(f"{spec}: {brief} ({row.get('seconds') or 0:.0f} s)", flush=True)
        return row

    del running
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(task, todo))
    from zoo_report import write  # noqa: PLC0415

    write(all_specs(None) if not args.only else specs)


if __name__ == "__main__":
    main()
