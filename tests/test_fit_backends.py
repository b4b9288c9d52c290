"""The Keras recipe on Keras 3's other backends: the README's example, as written, under JAX and PyTorch.

Each backend runs in its own process (Keras picks its backend once, at import). The scheduler's dataset is
tf.data on every backend, which Keras's data adapters feed to JAX and PyTorch; its learning rate and update
counter are Keras variables. CI installs both (the `backends` extra); elsewhere a missing backend skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import json, re, sys
from pathlib import Path
import keras
section = Path("README.md").read_text().split("## Use it in your own model", 1)[1].split("\\n## ", 1)[0]
namespace = {}
exec(compile(re.search(r"```python\\n(.*?)```", section, re.S).group(1), "README.md", "exec"), namespace)
model, history = namespace["model"], namespace["model"].history.history
json.dump({
    "backend": keras.backend.backend(),
    "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
    "accuracy": float(namespace["accuracy"]),
    "batch_size": [int(b) for b in history["batch_size"]],
    "learning_rate": [float(r) for r in history["learning_rate"]],
}, open(sys.argv[1], "w"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend, module", [("jax", "jax"), ("torch", "torch")])
def test_the_readme_recipe_runs_on_another_keras_backend(backend, module, tmp_path):
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs the 'backends' extra, but {module} is missing")
        pytest.skip(f"{module} is not installed (pip install -e '.[backends]')")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == backend
    assert result["iterations"] == 1488  # 600 + 600 + 120 + 120 + 24 + 24, as on TensorFlow
    assert result["batch_size"] == [100, 100, 500, 500, 2500, 2500]
    assert result["learning_rate"] == pytest.approx([0.01] * 6)
    assert result["accuracy"] > 0.9
