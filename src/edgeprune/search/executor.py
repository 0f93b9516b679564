"""Executors run a plan of candidates and stream their records into the run directory.

The driver is the only writer of the run directory: it appends each record as it arrives, so a killed
search loses at most the candidates still running. Candidates already in results.jsonl are skipped.
"""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def pending(store, plan):
    done = store.finished_ids()
    return [c for c in plan if c.id not in done]


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled)


class LocalExecutor:
    """Run candidates one after another in this process."""

    def run(self, ctx, plan, *, progress: bool = True, title: str = "candidates") -> list[dict]:
        from edgeprune.methods.mix_and_match import run_candidate

        todo = pending(ctx.store, plan)
        records = []
        with _bar(progress) as bar:
            task = bar.add_task(f"{title} ({len(plan) - len(todo)} done before)", total=len(todo))
            for cand in todo:
                bar.update(task, description=f"{title}: {cand.id}")
                record = run_candidate(ctx, cand)
                ctx.store.append(record)
                records.append(record)
                bar.advance(task)
        return records
