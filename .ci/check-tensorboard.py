#!/usr/bin/env python3
"""Reads every run's TensorBoard log of an experiment folder with TensorBoard's own reader
(EventMultiplexer) and checks it against the run files and history.csv; checks summary.csv
against summary.json. Usage: check-tensorboard.py <out>/<experiment>"""
import csv
import json
import math
import pathlib
import sys

from tensorboard.backend.event_processing import event_multiplexer

exp = pathlib.Path(sys.argv[1])
summary = json.loads((exp / "summary.json").read_text())
suffix = "-quick" if summary["quick"] else ""
runs_dir = exp / "runs"

mux = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0, "tensors": 0})
mux.AddRunsFromDirectory(str(runs_dir))
mux.Reload()
listed = mux.Runs()
expected = sum(len(m["runs"]) for m in summary["methods"].values())
tracked = [r for r in listed if r.endswith(suffix) or not suffix]
assert len(tracked) >= expected, f"TensorBoard lists {len(tracked)} runs, the summary {expected}"


def close(a, b):
    # TensorBoard's simple values are float32
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


checked = 0
for name in sorted(tracked):
    stem, seed_part = name.rsplit("/", 1)
    seed = seed_part.removeprefix("seed-").removesuffix(suffix)
    record = json.loads((runs_dir / f"{stem}-seed{seed}{suffix}.json").read_text())
    accumulator = mux.GetAccumulator(name)
    tags = set(accumulator.Tags()["scalars"])
    history = list(csv.DictReader(open(runs_dir / stem / seed_part / "history.csv")))
    assert len(history) == len(record["history"]), f"{name}: history.csv rows != run file epochs"
    columns = [c for c in history[0] if c != "epoch"]
    for column in columns:
        assert column in tags, f"{name}: {column} in history.csv but not in TensorBoard ({sorted(tags)})"
        events = {e.step: e.value for e in accumulator.Scalars(column)}
        for row in history:
            if row[column]:
                step = int(row["epoch"])
                assert close(events[step], float(row[column])), f"{name} {column} epoch {step}"
    for epoch, row in zip(record["history"], history):
        for task, loss in epoch["train_loss"].items():
            assert float(row[f"train/{task}/loss"]) == loss, f"{name}: csv != json"
        for key, value in epoch["val"].items():
            assert float(row[f"val/{key}"]) == value, f"{name}: csv != json"
    for key, value in record["metrics"].items():
        test = accumulator.Scalars(f"test/{key}")
        assert len(test) == 1 and close(test[0].value, value), f"{name}: test/{key}"
    assert "config" in accumulator.Tags()["tensors"], f"{name}: no config text"
    checked += 1
assert checked >= expected, f"checked {checked} runs, the summary has {expected}"

rows = list(csv.DictReader(open(exp / "summary.csv")))
n_metrics = 0
for method, ms in summary["methods"].items():
    for metric, mean in ms["mean"].items():
        row = [r for r in rows if r["method"] == method and r["metric"] == metric]
        assert len(row) == 1, f"summary.csv: {method} {metric}"
        assert float(row[0]["mean"]) == mean and int(row[0]["n"]) == len(ms["runs"])
        n_metrics += 1
assert len(rows) == n_metrics, f"summary.csv has {len(rows)} rows, summary.json {n_metrics}"
print(f"TensorBoard's reader: {checked} run(s), their scalars equal history.csv and the run files; "
      f"summary.csv equals summary.json ({n_metrics} rows)")
