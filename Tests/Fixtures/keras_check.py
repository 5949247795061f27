#!/usr/bin/env python3
"""Loads Keras files written by SegKit in real Keras and compares predictions
with `segkit forward` on the same input. Run by `make keras-check` (not in CI:
it needs the Keras 3 venv that make_fixtures.py describes).

  KERAS_BACKEND=jax ../venvs/k3/bin/python Tests/Fixtures/keras_check.py SEGKIT FILE[:H,W] ...

For each FILE (a .keras or .h5 that SegKit wrote) it feeds a random batch of
size H x W (default 32 x 32) to both and prints the largest difference; exits
non-zero if any model fails to load or differs by more than 1e-5.
"""
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py
import keras
import numpy as np

segkit, specs = sys.argv[1], sys.argv[2:]
rng = np.random.default_rng(0)
worst, failed = 0.0, []
for spec in specs:
    path, _, size = spec.partition(":")
    h, w = (int(v) for v in size.split(",")) if size else (32, 32)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # report every file, then fail
        print(f"FAIL {path}: Keras cannot load it: {e}")
        failed.append(path)
        continue
    channels = model.inputs[0].shape[-1]
    x = rng.uniform(0, 1, (2, h, w, channels)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.h5"), os.path.join(tmp, "out.h5")
        with h5py.File(inp, "w") as f:
            f["input"] = x
        run = subprocess.run([segkit, "forward", path, "--input", inp, "--output", out], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"FAIL {path}: segkit forward failed: {run.stderr.strip()}")
            failed.append(path)
            continue
        with h5py.File(out) as f:
            ours = f["output"][()]
    theirs = np.asarray(model.predict(x, verbose=0))
    if ours.shape != theirs.shape:
        print(f"FAIL {path}: shapes differ, segkit {ours.shape} vs keras {theirs.shape}")
        failed.append(path)
        continue
    diff = float(np.abs(ours - theirs).max())
    worst = max(worst, diff)
    status = "ok  " if diff <= 1e-5 else "FAIL"
    if diff > 1e-5:
        failed.append(path)
    print(f"{status} {path} at {h}x{w}: output {theirs.shape}, max |segkit - keras| = {diff:.3g}")
print(f"{len(specs) - len(failed)} passed, {len(failed)} failed (largest difference {worst:.3g})")
sys.exit(1 if failed else 0)
