#!/usr/bin/env python3
"""Writes the Keras files SegKit's importer tests read, with Keras's own outputs.

Run once by a developer (outputs are committed under Tests/Fixtures/keras/):

  python3 -m venv ../venvs/k3 && ../venvs/k3/bin/pip install keras==3.15.1 "jax[cpu]" h5py
  python3 -m venv ../venvs/tf && ../venvs/tf/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
  KERAS_BACKEND=jax ../venvs/k3/bin/python Tests/Fixtures/make_fixtures.py --keras 3
  ../venvs/tf/bin/python Tests/Fixtures/make_fixtures.py --keras 2

(`make fixtures` runs the last two lines.) For every net NET and Keras major K it writes:
  K=3: NET.k3.keras, NET.k3.h5 (legacy model.save), NET.k3.weights.h5 + NET.k3.json (to_json)
  K=2: NET.k2.h5 (model.save), NET.k2.w.h5 (save_weights, legacy layout) + NET.k2.json,
       NET.k2.weights.h5 (tf.keras 2.13+ writes the Keras 3 layout for this suffix)
  NET.kK.expected.h5: dataset `input` (a fixed random batch), `output` (model.predict),
       one dataset per probed layer name (that layer's output), and attributes
       total_params / trainable_params / non_trainable_params from Keras.
The MobileNetV2 net is written only as .k3.keras and .k2.h5 to keep the repository small.
"""
import argparse
import json
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--keras", choices=["2", "3"], required=True)
ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras"))
args = ap.parse_args()

if args.keras == "3":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
else:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras as keras
import h5py
import numpy as np

K = args.keras
L = keras.layers
rng = np.random.default_rng(1234)
os.makedirs(args.out, exist_ok=True)


def leaky(slope, name):
    return L.LeakyReLU(negative_slope=slope, name=name) if K == "3" else L.LeakyReLU(alpha=slope, name=name)


def randomize_batchnorm(model):
    """Non-trivial statistics, so a reader that ignores them is caught."""
    for layer in iter_layers(model):
        if isinstance(layer, L.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            ws = []
            if layer.scale:
                ws.append(rng.uniform(0.5, 1.5, c))
            if layer.center:
                ws.append(rng.normal(0, 0.2, c))
            ws += [rng.normal(0, 0.5, c), rng.uniform(0.5, 2.0, c)]
            layer.set_weights([w.astype("float32") for w in ws])


def iter_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def plain_cnn():
    """The running example's shape: strided convs, global max pool, two Dense."""
    x = inp = keras.Input((24, 24, 1), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="swish", name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", name="conv2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="swish", name="conv3")(x)
    x = L.GlobalMaxPooling2D(name="pool")(x)
    x = L.Dense(16, activation="swish", name="fc1")(x)
    x = L.Dropout(0.3, name="drop")(x)
    x = L.Dense(11, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="plain_cnn"), ["conv1", "bn1", "conv3", "pool", "fc1"]


def vgg():
    """VGG-style Sequential with Flatten -> Dense; the first block frozen."""
    m = keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(8, 3, padding="same", activation="relu", name="block1_conv1"),
        L.Conv2D(8, 3, padding="same", activation="relu", name="block1_conv2"),
        L.MaxPooling2D(2, name="block1_pool"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="block2_conv1"),
        L.BatchNormalization(name="block2_bn"),
        L.MaxPooling2D(2, name="block2_pool"),
        L.Flatten(name="flatten"),
        L.Dense(32, activation="relu", name="fc1"),
        L.Dropout(0.5, name="drop"),
        L.Dense(10, activation="softmax", name="predictions"),
    ], name="vgg")
    m.get_layer("block1_conv1").trainable = False
    return m, ["block1_pool", "block2_bn", "flatten", "fc1"]


def residual():
    """A small residual net: Add, Concatenate, a projection shortcut, ReLU6."""
    inp = keras.Input((20, 20, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu6", name="stem_relu")(x)
    y = L.Conv2D(8, 3, padding="same", activation="relu", name="res1_a")(x)
    y = L.Conv2D(8, 3, padding="same", name="res1_b")(y)
    x = L.Add(name="res1_add")([x, y])
    x = L.Activation("relu", name="res1_relu")(x)
    s = L.Conv2D(16, 1, strides=2, name="res2_proj")(x)
    y = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="res2_a")(x)
    y = L.BatchNormalization(name="res2_bn")(y)
    x = L.Add(name="res2_add")([s, y])
    b1 = L.Conv2D(8, 1, activation="relu", name="branch1")(x)
    b2 = L.Conv2D(8, 3, padding="same", activation="relu", name="branch2")(x)
    b3 = L.MaxPooling2D(3, strides=1, padding="same", name="branch3_pool")(x)
    x = L.Concatenate(name="mix")([b1, b2, b3])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="residual"), ["stem_relu", "res1_add", "res2_add", "mix", "gap"]


def zoo():
    """Every other layer type and activation SegKit imports, in one graph."""
    inp = keras.Input((18, 18, 3), name="image")
    x = L.Rescaling(1.0 / 255, offset=-0.5, name="rescale")(inp)
    norm = L.Normalization(name="norm")
    norm.adapt(rng.uniform(-0.5, 0.5, (64, 18, 18, 3)).astype("float32") * np.array([1, 2, 3], "float32"))
    x = norm(x)
    x = L.ZeroPadding2D(((1, 2), (0, 1)), name="pad")(x)                        # 21x19
    x = L.Conv2D(8, 3, dilation_rate=2, activation="gelu", name="dilated")(x)    # 17x15
    x = L.Cropping2D(((1, 0), (0, 1)), name="crop")(x)                          # 16x14
    x = L.Conv2D(8, 3, padding="same", groups=2, activation="tanh", name="grouped")(x)
    x = L.SeparableConv2D(12, 3, padding="same", depth_multiplier=2, activation="hard_sigmoid", name="sep")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=1, activation="softplus", name="dw")(x)  # 8x7
    x = leaky(0.2, "leaky")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="avg")(x)       # 4x4
    u = L.Conv2DTranspose(6, 3, strides=2, padding="same", output_padding=1, activation="elu", name="deconv")(x)  # 8x8
    n = L.UpSampling2D(2, interpolation="nearest", name="up_nearest")(x)       # 8x8x12
    n = L.Conv2D(6, 1, activation="hard_swish" if K == "3" else "sigmoid", name="proj")(n)
    b = L.UpSampling2D((2, 2), interpolation="bilinear", name="up_bilinear")(x)
    b = L.Conv2D(6, 1, activation="silu" if K == "3" else "swish", name="proj_b")(b)
    g = L.Conv2DTranspose(6, 2, strides=2, padding="valid", name="deconv_valid")(x)
    x = L.Multiply(name="gate")([u, n])
    x = L.Add(name="sum")([x, b, g])
    x = L.ELU(alpha=0.7, name="elu")(x)
    x = L.SpatialDropout2D(0.2, name="sdrop")(x)
    x = L.BatchNormalization(center=False, name="bn_nocenter")(x)
    x = L.Reshape((8, 48), name="reshape")(x)
    x = L.Dense(5, name="dense3d")(x)                                           # Dense on a 3-D tensor
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(7, name="logits")(x)
    x = L.Softmax(name="softmax")(x)
    return keras.Model(inp, x, name="zoo"), ["norm", "dilated", "crop", "sep", "dw", "avg", "deconv",
                                               "up_bilinear", "gate", "bn_nocenter", "dense3d"]


def nested():
    """A backbone model used as one layer of the outer model."""
    bin_ = keras.Input((16, 16, 3), name="backbone_in")
    y = L.Conv2D(8, 3, strides=2, padding="same", name="bb_conv1")(bin_)
    y = L.BatchNormalization(name="bb_bn1")(y)
    y = L.Activation("relu", name="bb_relu1")(y)
    y = L.Conv2D(16, 3, strides=2, padding="same", name="bb_conv2")(y)
    y = L.BatchNormalization(name="bb_bn2")(y)
    y = L.Activation("swish", name="bb_swish2")(y)
    backbone = keras.Model(bin_, y, name="backbone")
    inp = keras.Input((16, 16, 3), name="image")
    x = backbone(inp)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="nested"), ["gap"]


def mobilenet():
    m = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    return m, ["Conv1", "block_1_expand_relu", "block_2_add", "out_relu"]


def with_lambda():
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = L.Lambda(lambda t: t * 2.0, name="double_it")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, x, name="with_lambda"), []


def count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def write_expected(model, probes, path):
    shape = (2,) + tuple(model.input_shape[1:])
    x = rng.uniform(0, 1, shape).astype("float32")
    if model.name == "zoo":
        x *= 255.0  # the zoo rescales 0..255 itself
    outs = [model.outputs[0]] + [model.get_layer(p).output for p in probes]
    probe_model = keras.Model(model.inputs, outs)
    ys = probe_model.predict(x, verbose=0)
    with h5py.File(path, "w") as f:
        f["input"] = x
        f["output"] = np.asarray(ys[0])
        for p, y in zip(probes, ys[1:]):
            f[p] = np.asarray(y)
        f.attrs["total_params"] = model.count_params()
        f.attrs["trainable_params"] = count(model.trainable_weights)
        f.attrs["non_trainable_params"] = count(model.non_trainable_weights)
        f.attrs["keras_version"] = keras.__version__


def save_all(name, build, formats):
    model, probes = build()
    randomize_batchnorm(model)
    for layer in iter_layers(model):  # move every other weight off its initial value too
        ws = layer.get_weights()
        if ws and not isinstance(layer, (L.BatchNormalization, L.Normalization)):
            layer.set_weights([(w + rng.normal(0, 0.05, w.shape)).astype(w.dtype) for w in ws])
    base = os.path.join(args.out, f"{name}.k{K}")
    if "keras" in formats:
        model.save(base + ".keras")
    if "h5" in formats:
        model.save(base + ".h5")
    if "weights" in formats:
        model.save_weights(base + ".weights.h5")
        with open(base + ".json", "w") as f:
            f.write(model.to_json())
    if "legacy_weights" in formats:
        model.save_weights(base + ".w.h5")
        with open(base + ".json", "w") as f:
            f.write(model.to_json())
    if name != "with_lambda":
        write_expected(model, probes, base + ".expected.h5")
    print("wrote", base, formats, flush=True)


every = ["keras", "h5", "weights"] if K == "3" else ["h5", "legacy_weights", "weights"]
for net, build in [("plain_cnn", plain_cnn), ("vgg", vgg), ("residual", residual), ("zoo", zoo), ("nested", nested)]:
    save_all(net, build, every)
save_all("mobilenet_v2", mobilenet, ["keras"] if K == "3" else ["h5"])
save_all("with_lambda", with_lambda, ["keras"] if K == "3" else ["h5"])


def chunked_attributes_copy():
    """Keras 2's save_attributes_to_hdf5_group splits an attribute over 64 KiB into
    name0, name1, ... A real classifier rarely gets there, so this re-writes the
    small weights file's layer_names the way Keras splits it."""
    import shutil
    src = os.path.join(args.out, "plain_cnn.k2.w.h5")
    dst = os.path.join(args.out, "plain_cnn.k2.chunked.w.h5")
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        names = f.attrs["layer_names"]
        del f.attrs["layer_names"]
        for i, chunk in enumerate(np.array_split(names, 3)):
            f.attrs["layer_names%d" % i] = chunk
    print("wrote", dst, flush=True)


if K == "2":
    chunked_attributes_copy()
