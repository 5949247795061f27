#!/usr/bin/env python3
"""Writes the classifiers of ../shared/bench/encoder_bench.py for `segkit bench --encoders`.

  PY Tests/Fixtures/encoder_classifiers.py OUTDIR [--size 224] [--backbones mobilenet_v2,resnet50,efficientnet_b0]

writes OUTDIR/mobilenet_v2.keras, resnet50.keras and efficientnet_b0.keras: keras.applications
at SIZE x SIZE x 3, weights=None, 10 classes, BatchNormalization statistics randomized as the
script's randomize() does. PY: a Python with Keras 3 (`make bench-encoders` uses ../venvs/tf,
TensorFlow backend, the default here; ../venvs/k3 with KERAS_BACKEND=jax works too). Developers
only (`make bench-encoders` runs it); the files are not committed (ResNet50 alone is ~95 MB).

Same seeds, same draws as the script: keras.utils.set_random_seed(0) before each model, one numpy
generator (seed 0) for all, and after each model the script's draws of its images and masks
(--n, --classes), so that with the same backbones in the same order, the same backend and
Keras version, the files hold the script's own weights.
"""
import argparse, os, sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("outdir")
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--backbones", default="mobilenet_v2,resnet50,efficientnet_b0")
ap.add_argument("--n", type=int, default=64, help="encoder_bench.py's --n (its image draws move the generator)")
ap.add_argument("--classes", type=int, default=5, help="encoder_bench.py's --classes (its mask draws)")
args = ap.parse_args()

import numpy as np
import keras

A = keras.applications
BACKBONES = {
    "mobilenet_v2": lambda s: A.MobileNetV2(input_shape=(s, s, 3), weights=None, classes=10),
    "resnet50": lambda s: A.ResNet50(input_shape=(s, s, 3), weights=None, classes=10),
    "efficientnet_b0": lambda s: A.EfficientNetB0(input_shape=(s, s, 3), weights=None, classes=10),
}
names = args.backbones.split(",")
unknown = [n for n in names if n not in BACKBONES]
if unknown:
    sys.exit(f"--backbones: unknown {', '.join(unknown)} (known: {', '.join(BACKBONES)})")
os.makedirs(args.outdir, exist_ok=True)
rng = np.random.default_rng(0)


def randomize(m):
    """encoder_bench.py's randomize(): moving mean ~ N(0, 0.2), moving variance ~ U(0.5, 2)."""
    for l in m.layers:
        if isinstance(l, keras.layers.BatchNormalization):
            w = l.get_weights(); c = w[-1].shape[0]
            w[-2] = rng.normal(0, 0.2, c).astype("float32"); w[-1] = rng.uniform(0.5, 2, c).astype("float32")
            l.set_weights(w)


for name in names:
    keras.utils.set_random_seed(0)
    model = BACKBONES[name](args.size)
    randomize(model)
    path = os.path.join(args.outdir, f"{name}.keras")
    model.save(path)
    # The script draws its images and masks here, before the next backbone's statistics.
    rng.random((args.n, args.size, args.size, 3), dtype=np.float32)
    rng.integers(0, args.classes, (args.n, args.size, args.size))
    print(f"{path}: {model.name}, {args.size}x{args.size}x3, {model.count_params()} parameters")
