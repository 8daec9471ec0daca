"""Issue 14: N = 10,000 nodes (synthetic data) run through the broker on one machine within 4 GiB."""

from __future__ import annotations

import json
import subprocess
import sys

import ceas

CHILD = """
import json, math, resource
from ceas.config import load_config
from ceas.experiment.runner import make_trainer
cfg = load_config("paper", ["training.nodes=10000", 'data.dataset="synthetic"', "data.n_samples=40000",
                            "run.rounds=2"])
trainer = make_trainer(cfg)
opt = trainer.make_optimizer()
theta = trainer.initial_parameters()
rows = []
for t in range(2):
    res = trainer.run_round(t, theta, opt)
    theta = res.theta
    rows.append(res.metrics)
print(json.dumps({"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "participants": [r["participants"] for r in rows],
                  "finite": all(math.isfinite(r["train_loss"]) for r in rows)}))
"""


def test_ten_thousand_nodes_through_the_broker_fit_in_4_gib():
    src = str(__import__("pathlib").Path(ceas.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600, check=False,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["finite"] and out["participants"] == [10, 10]
    assert out["rss_mib"] < 4096, out
