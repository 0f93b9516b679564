"""Assemble benchmarks/README.md from the sections the benchmark scripts wrote (sections/*.md).

    python benchmarks/make_readme.py

Every table in the README comes from a committed results/*.json written by the script named beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ORDER = ["train_mnist", "honest_mnist_summary", "honest_mnist_lenet5_40ep_aug", "honest_mnist_lenet300_60ep_aug", "honest_mnist_lenet300_60ep", "honest_mnist_lenet5_40ep", "honest_mnist_resnet20", "honest_mnist_vit", "honest_mnist_lenet300", "honest_mnist_lenet300_3seeds", "honest_mnist_lenet300_3ep", "honest_mnist_lenet5_3ep", "mam_mnist_lenet300", "mam_mnist_lenet5", "masks_deit_b", "vbp_vit_mnist", "reconvene_mnist", "aligned_widths", "speedup_honesty", "structured_resnet20_curve", "structured_vgg16_curve", "structured_vit_curve", "structured_resnet20_ft8_b40_seeds", "structured_resnet20_ft8_b30_seeds", "structured_resnet20_ft8_b30_fine_seeds", "structured_vgg16_r16_ft6_b30_seeds", "structured_vit_ft16_b40_seeds", "structured_vit_ft16_b40_taylor_seeds", "structured_resnet20_ft8_d24_seeds", "structured_vit_ft16_d2_seeds", "structured_vgg16_r16_ft6_b45_seeds", "structured_vgg16_r16_ft6_seeds", "structured_vgg16_r16_ft6", "structured_resnet20_seeds", "structured_resnet20", "structured_resnet20_ft8_seeds", "structured_resnet20_ft3_seeds", "structured_resnet20_ft3", "structured_resnet20_ft8", "structured_resnet20_r8", "structured_vgg16_width_mult0.5_seeds", "structured_vgg16_width_mult0.5", "structured_vit_ft8_seeds", "structured_vit_ft8", "deploy", "paired_ratio", "paired_warm", "executorch", "runtimes", "edge_budgets", "executorch_zoo", "openvino_zoo", "litert_zoo", "scale"]

HEADER = """# Benchmarks

Each script below writes `results/<name>.json` (the command, git revision, machine line and every number)
and `sections/<name>.md` (the table shown here); `python benchmarks/make_readme.py` assembles this page.
Run them from the repository root with the project's virtual environment, e.g.
`EDGEPRUNE_DATA=../shared/data .venv/bin/python benchmarks/mam_mnist.py`.

All figures were measured on the 2-core CPU machines this project runs on (no GPU); the machine line (and, where
recorded, the load average) is in the JSON. Most runs shared the 2 cores with other jobs: timings are upper
bounds, ratios were measured side by side in one run. Accuracy claims use selection on a validation split
and test accuracy measured once per final model.

The `mam_mnist_*` sections were written by `benchmarks/mam_mnist.py` on the retired `edgeprune search`
pipeline (see the revision in their JSON; the script is in the git history); `honest_mnist.py` supersedes
them with converged fine-tunes, baselines on the same front and intervals.
"""


def provenance(name: str) -> str:
    path = ROOT / "results" / f"{name}.json"
    if not path.exists():
        return ""
    data = json.loads(path.read_text())
    m = data.get("machine", {})
    return (f"\n_Source: `results/{name}.json` — `{data.get('command', '?')}` at `{data.get('git_revision', '?')}`, "
            f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores), {data.get('date', '?')}._\n")


def main() -> None:
    names = [n for n in ORDER if (ROOT / "sections" / f"{n}.md").exists()]
    names += sorted(p.stem for p in (ROOT / "sections").glob("*.md") if p.stem not in names)
    parts = [HEADER]
    for name in names:
        parts.append((ROOT / "sections" / f"{name}.md").read_text().rstrip() + "\n" + provenance(name))
    (ROOT / "README.md").write_text("\n".join(parts))
    print(f"wrote {ROOT / 'README.md'} with {len(names)} sections")


if __name__ == "__main__":
    main()
