#!/usr/bin/env python3
"""Loads Keras files written by SegKit in real Keras and compares predictions
with `segkit forward --raw` on the same input. Run by `make keras-check` (not
in CI: it needs the Keras 3 venv that make_fixtures.py describes).

  KERAS_BACKEND=jax ../venvs/k3/bin/python Tests/Fixtures/keras_check.py SEGKIT FILE[:H,W[:TOL]] ...

For each FILE (a .keras or .h5 that SegKit wrote) it feeds a random batch of
two H x W images (default 32 x 32) to both and prints the largest difference;
exits non-zero if any model fails to load or run in Keras, if the output
shapes differ, or if the outputs differ by more than the tolerance.

`segkit forward` on a segmenter applies SegKit's size rule (mirror-pads the
input, crops the output back to the input's size); `--raw` runs the graph
exactly as Keras's `model.predict` does, so it is always passed (for a plain
convolutionalized classifier it changes nothing). The raw graph runs only at
certain sizes: a segmenter's reference size plus multiples of its total
stride (`segkit build` prints both; segkit.json stores them as
`reference_size` and `total_stride`), so H,W must be one of those; a size
that is not is reported as a note (Keras may still run it, the floors of a
valid-padding encoder then differing from SegKit's size rule).

TOL is the bound on max |segkit - keras|:
  1e-5      absolute (the default when TOL is omitted);
  rel=1e-4  relative: 1e-4 * max(1, max |keras output|), for the Keras
            Applications (MobileNet v1, ResNet50V2, InceptionV3), whose
            float32 rounding summed over 28-100 layers exceeds 1e-5 (MobileNet
            v1 up to 8e-5 on logits of ~3; InceptionV3 up to 9e-3 on logits
            of ~600):
            the bound the importer tests use for them.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py
import keras
import numpy as np
from keras.src.initializers.initializer import Initializer


# Keras creates every variable with its initializer before it reads the file's
# values into it; under JAX each random initializer compiles once per shape
# (~30 s to load ResNet50V2). Here they fill variables with NaN instead: loading
# is several times faster, and a variable the file fails to set shows up as NaN
# in Keras's output (a FAIL) instead of as a plausible random value.
def _nan_initializer(self, shape, dtype=None):
    return keras.ops.full(shape, float("nan"), dtype=dtype)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


for _cls in set(_subclasses(Initializer)):
    if "__call__" in vars(_cls):
        _cls.__call__ = _nan_initializer

DEFAULT_TOL = 1e-5


def parse(spec):
    path, size, tol = (spec.split(":") + ["", ""])[:3]
    h, w = (int(v) for v in size.split(",")) if size else (32, 32)
    relative = tol.startswith("rel=")
    bound = float(tol[4:] if relative else tol) if tol else DEFAULT_TOL
    return path, h, w, bound, relative


def segkit_metadata(path):
    """The segkit.json SegKit stores with a segmenter ({} if none)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("segkit.json")) if "segkit.json" in z.namelist() else {}
        with h5py.File(path) as f:
            text = f.attrs.get("segkit")
            return json.loads(text) if text is not None else {}
    except (OSError, ValueError, KeyError):
        return {}


def size_note(path, h, w):
    meta = segkit_metadata(path)
    ref, stride = meta.get("reference_size"), meta.get("total_stride")
    if not ref or not stride:
        return ""
    runs = all(n >= r and (n - r) % stride == 0 for n, r in zip((h, w), ref))
    note = f" (reference {ref[0]}x{ref[1]}, stride {stride}"
    return note + (")" if runs else f"; NOTE: {h}x{w} is not reference + k*stride)")


segkit, specs = sys.argv[1], sys.argv[2:]
rng = np.random.default_rng(0)
worst, failed = 0.0, []
for spec in specs:
    path, h, w, bound, relative = parse(spec)
    started = time.perf_counter()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # report every file, then fail
        print(f"FAIL {path}: Keras cannot load it: {type(e).__name__}: {e}")
        failed.append(path)
        continue
    channels = model.inputs[0].shape[-1]
    x = rng.uniform(0, 1, (2, h, w, channels)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.h5"), os.path.join(tmp, "out.h5")
        with h5py.File(inp, "w") as f:
            f["input"] = x
        t_keras = time.perf_counter() - started
        run = subprocess.run([segkit, "forward", path, "--raw", "--input", inp, "--output", out],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"FAIL {path} at {h}x{w}: segkit forward --raw failed: {run.stderr.strip()}")
            failed.append(path)
            continue
        with h5py.File(out) as f:
            ours = f["output"][()]
    t_segkit = time.perf_counter() - started - t_keras
    try:
        theirs = np.asarray(model.predict(x, verbose=0))
    except Exception as e:
        msg = str(e).strip().splitlines()
        print(f"FAIL {path} at {h}x{w}{size_note(path, h, w)}: Keras cannot run it: {type(e).__name__}: {msg[0] if msg else ''}"
              f" (segkit's output {ours.shape})")
        failed.append(path)
        continue
    if ours.shape != theirs.shape:
        print(f"FAIL {path} at {h}x{w}{size_note(path, h, w)}: shapes differ, segkit {ours.shape} vs keras {theirs.shape}")
        failed.append(path)
        continue
    if np.isnan(theirs).any() or np.isnan(ours).any():
        print(f"FAIL {path} at {h}x{w}: NaN in {'keras' if np.isnan(theirs).any() else 'segkit'}'s output "
              f"{theirs.shape} (in Keras: a variable the file did not set)")
        failed.append(path)
        continue
    diff = float(np.abs(ours - theirs).max())
    limit = bound * max(1.0, float(np.abs(theirs).max())) if relative else bound
    worst = max(worst, diff)
    ok = diff <= limit
    if not ok:
        failed.append(path)
    kind = f"relative {bound:g}" if relative else f"{bound:g}"
    print(f"{'ok  ' if ok else 'FAIL'} {path} at {h}x{w}{size_note(path, h, w)}: output {theirs.shape}, "
          f"max |segkit - keras| = {diff:.3g} (bound {limit:.3g}, {kind}; max |keras| {np.abs(theirs).max():.3g}), "
          f"{time.perf_counter() - started:.1f} s (segkit {t_segkit:.1f} s)")
print(f"{len(specs) - len(failed)} passed, {len(failed)} failed (largest difference {worst:.3g})")
sys.exit(1 if failed else 0)
