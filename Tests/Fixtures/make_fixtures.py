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

The nets, all with every format above unless said otherwise:
  plain_cnn, vgg, residual, zoo, nested    hand-made, one per importer feature
  mobilenet_v2                             keras.applications, alpha 0.35, 32x32
  with_lambda                              a Lambda layer (no expected.h5: SegKit refuses it)
  mnist_convnet                            keras-io "Simple MNIST convnet", valid padding
  vgg_valid                                cats-vs-dogs-style valid-padding CNN at 150x150
                                           (odd sizes floored by the pools), Activation('softmax') head
  pool3                                    3x3 max pools with stride 3
  mini_xception                            oarriaga's FER mini_XCEPTION (2 of its 4 modules),
                                           SeparableConv2D + strided residual adds, L2 regularizers
  bn_head                                  Dense -> BatchNormalization -> Dropout -> Dense head
  binary_sigmoid                           one sigmoid output unit
  two_outputs                              outputs [main, aux]; expected.h5's `output` is main,
                                           the aux head's output the `aux` probe dataset
  resnet50v2, inception_v3, mobilenet_v1   keras.applications (64x64, 75x75, 64x64 alpha 0.25;
                                           5 classes, weights=None): .k3.keras and .k2.h5 only
  efficientnet_b0, efficientnet_v2_b0      keras.applications at 64x64 (Rescaling / Normalization
                                           inside, squeeze-excite Multiply, Dropout noise_shape)
  mobilenet_v3_small[_nopre]               MobileNetV3Small 64x64 with / without include_preprocessing
                                           (x + 3, x * (1/6): TFOpLambda in tf.keras, op layers in Keras 3)
  convnext_tiny                            ConvNeXtTiny 32x32 (LayerNormalization, LayerScale)
  regnetx002                               RegNetX002 64x64, tf.keras only (Keras 3 has no RegNet);
                                           its head has no softmax
  inception_resnet_v2                      not the whole application (54 M parameters: 2.3 MB as
                                           .k3.keras, 3.4 MB as .k2.h5 even with low-entropy weights)
                                           but a net with one block of each kind built by its own
                                           conv2d_bn / inception_resnet_block (CustomScaleLayer), 75x75
    (these seven: 5 classes, weights=None, low-entropy weights, .k3.keras and .k2.h5 only)
  tf_tutorial                              TensorFlow's image-classification tutorial at 64x64: nested
                                           data_augmentation Sequential (RandomFlip / RandomRotation /
                                           RandomZoom), Rescaling, 3 conv/pool, Dense(128), logits;
                                           low-entropy weights (0.5 M parameters), every format
  augment_zoo                              every Random* layer of its Keras, Resizing, CenterCrop,
                                           RandomCrop before a small conv net (no .k3.h5: Keras 3
                                           cannot write it, see below)
  prelu_net                                PReLU with shared_axes [1, 2] and with the default
  mixed_f16                                built under the mixed_float16 policy, float32 softmax
  arith_net                                tensor arithmetic and ops: x / 127.5 - 1, x + 3, x * (1/6),
                                           relu6, mean over axes 1, 2, Reshape to channels
  flat_input                               (28, 28) input without a channel axis, Reshape((28, 28, 1)),
                                           a Permute of height and width
  float16_net                              built under the float16 policy: weights stored as float16
  group_norm_net                           GroupNormalization: 4 groups of 2 channels, and one group per
                                           channel (groups=-1) without scale, epsilon 1e-2
Inputs in 0..255 for the nets that rescale pixels themselves (INPUT_SCALE), else 0..1. A probe
whose layer name has a "/" (tf.keras's MobileNetV3) is a dataset in nested groups of that path.

The three applications have 0.2-24 M parameters, ~90 MB of float32 for ResNet50V2 and
InceptionV3. To keep the repository small (every file here stays under 2 MB) they get
low-entropy weights instead of random ones (low_entropy_weights: a short repeating
sequence per kernel, BN statistics from one calibration pass), their .keras archive is
rewritten with its entries deflated (Keras 3 stores them uncompressed), and a .k2.h5
over 2 MB is rewritten with its large datasets gzip-filtered in the HDF5 1.10 format
(gzip_h5); Keras loads both rewrites unchanged. mobilenet_v1.k2.h5 is as tf.keras writes it.
The later low-entropy nets below get the same treatment (for tf_tutorial, every .h5 over
2 MB, .k3.h5 and the weights files included).

`--only NET1,NET2` writes just those nets and leaves the other files alone: Keras's
initialisers are not seeded, so a full run rewrites every committed file with new values.
"""
import argparse
import json
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--keras", choices=["2", "3"], required=True)
ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras"))
ap.add_argument("--only", type=lambda v: v.split(","), default=None,
                help="comma-separated nets to write (default: all); the others' files are left as they are")
args = ap.parse_args()

if args.keras == "3":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
else:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras as keras
    import tensorflow as tf  # tf.nn / tf.math ops on Keras tensors become TFOpLambda layers
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


def mnist_convnet():
    """keras-io's "Simple MNIST convnet", valid padding throughout."""
    m = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(32, 3, activation="relu", name="conv2d"),
        L.MaxPooling2D(2, name="max_pooling2d"),
        L.Conv2D(64, 3, activation="relu", name="conv2d_1"),
        L.MaxPooling2D(2, name="max_pooling2d_1"),
        L.Flatten(name="flatten"),
        L.Dropout(0.5, name="dropout"),
        L.Dense(10, activation="softmax", name="dense"),
    ], name="mnist_convnet")
    return m, ["conv2d", "max_pooling2d", "max_pooling2d_1", "flatten"]


def vgg_valid():
    """A cats-vs-dogs-tutorial CNN at 150x150: valid convs, odd sizes floored by
    the pools (148 74 72 36 34 17), the softmax a separate Activation layer."""
    m = keras.Sequential([
        keras.Input((150, 150, 3)),
        L.Conv2D(8, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, activation="relu", name="conv2"),
        L.MaxPooling2D(2, name="pool2"),
        L.Conv2D(16, 3, activation="relu", name="conv3"),
        L.MaxPooling2D(2, name="pool3"),
        L.Flatten(name="flatten"),
        L.Dense(16, activation="relu", name="fc1"),
        L.Dense(3, name="logits"),
        L.Activation("softmax", name="softmax"),
    ], name="vgg_valid")
    return m, ["pool2", "pool3", "flatten", "fc1", "logits"]


def pool3():
    """3x3 pools with stride 3 (54 -> 18, 16 -> 5)."""
    inp = keras.Input((54, 54, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.MaxPooling2D(3, name="pool1")(x)
    x = L.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(3, name="pool2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="pool3"), ["pool1", "conv2", "pool2", "gap"]


def mini_xception():
    """oarriaga/face_classification's mini_XCEPTION (FER, 48x48 grey, 7 classes),
    with two residual modules instead of four."""
    reg = keras.regularizers.l2(0.01)
    inp = keras.Input((48, 48, 1), name="input")
    x = L.Conv2D(8, 3, strides=1, kernel_regularizer=reg, use_bias=False, name="base_conv1")(inp)
    x = L.BatchNormalization(name="base_bn1")(x)
    x = L.Activation("relu", name="base_relu1")(x)
    x = L.Conv2D(8, 3, strides=1, kernel_regularizer=reg, use_bias=False, name="base_conv2")(x)
    x = L.BatchNormalization(name="base_bn2")(x)
    x = L.Activation("relu", name="base_relu2")(x)
    for i, f in enumerate([16, 32], 1):
        residual = L.Conv2D(f, 1, strides=2, padding="same", use_bias=False, name=f"m{i}_res_conv")(x)
        residual = L.BatchNormalization(name=f"m{i}_res_bn")(residual)
        x = L.SeparableConv2D(f, 3, padding="same", use_bias=False, name=f"m{i}_sep1")(x)
        x = L.BatchNormalization(name=f"m{i}_bn1")(x)
        x = L.Activation("relu", name=f"m{i}_relu1")(x)
        x = L.SeparableConv2D(f, 3, padding="same", use_bias=False, name=f"m{i}_sep2")(x)
        x = L.BatchNormalization(name=f"m{i}_bn2")(x)
        x = L.MaxPooling2D(3, strides=2, padding="same", name=f"m{i}_pool")(x)
        x = L.add([x, residual], name=f"m{i}_add")
    x = L.Conv2D(7, 3, padding="same", name="class_conv")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Activation("softmax", name="predictions")(x)
    return keras.Model(inp, x, name="mini_xception"), ["base_relu2", "m1_add", "m2_add", "class_conv", "gap"]


def bn_head():
    """BatchNormalization and Dropout between the Dense layers of the head."""
    m = keras.Sequential([
        keras.Input((32, 32, 3)),
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        L.MaxPooling2D(2, name="pool2"),
        L.Flatten(name="flatten"),
        L.Dense(16, name="fc1"),
        L.BatchNormalization(name="fc1_bn"),
        L.Dropout(0.3, name="drop"),
        L.Dense(5, activation="softmax", name="predictions"),
    ], name="bn_head")
    return m, ["pool2", "fc1", "fc1_bn"]


def binary_sigmoid():
    """One sigmoid unit: a binary classifier."""
    inp = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inp, x, name="binary_sigmoid"), ["conv2", "gap"]


def two_outputs():
    """A main head and an auxiliary head off an earlier feature map; outputs
    [main, aux]. expected.h5's `output` is main, its `aux` dataset the other."""
    inp = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.MaxPooling2D(2, name="pool1")(x)
    f = L.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(f)
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    main = L.GlobalAveragePooling2D(name="main_gap")(x)
    main = L.Dense(4, activation="softmax", name="main")(main)
    aux = L.GlobalAveragePooling2D(name="aux_gap")(f)
    aux = L.Dense(2, activation="softmax", name="aux")(aux)
    return keras.Model(inp, [main, aux], name="two_outputs"), ["aux", "conv2", "main_gap"]


def resnet50v2():
    m = keras.applications.ResNet50V2(input_shape=(64, 64, 3), weights=None, classes=5)
    return m, ["pool1_pool", "conv2_block3_out", "conv4_block6_out", "post_relu", "avg_pool"]


def inception_v3():
    m = keras.applications.InceptionV3(input_shape=(75, 75, 3), weights=None, classes=5)
    return m, ["mixed0", "mixed5", "mixed10", "avg_pool"]


def mobilenet_v1():
    m = keras.applications.MobileNet(input_shape=(64, 64, 3), alpha=0.25, weights=None, classes=5)
    return m, ["conv1_relu", "conv_pw_5_relu", "conv_pw_13_relu", "conv_preds"]


def with_lambda():
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = L.Lambda(lambda t: t * 2.0, name="double_it")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, x, name="with_lambda"), []


def efficientnet_b0():
    m = keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None, classes=5)
    return m, ["stem_activation", "block2a_se_excite", "block3b_add", "block6a_se_excite",
               "top_activation", "avg_pool"]


def efficientnet_v2_b0():
    m = keras.applications.EfficientNetV2B0(input_shape=(64, 64, 3), weights=None, classes=5)
    return m, ["stem_activation", "block1a_project_activation", "block3b_add", "block4b_se_excite",
               "block6h_add", "top_activation", "avg_pool"]


def mobilenet_v3_small(include_preprocessing=True):
    m = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), weights=None, classes=5,
                                            include_preprocessing=include_preprocessing)
    probes = (["conv_bn", "expanded_conv_squeeze_excite_mul", "expanded_conv_3_squeeze_excite_mul",
               "expanded_conv_9_add", "conv_1_bn", "logits"] if K == "3" else
              ["Conv/BatchNorm", "expanded_conv/squeeze_excite/Mul", "expanded_conv_3/squeeze_excite/Mul",
               "expanded_conv_9/Add", "Conv_1/BatchNorm", "Logits"])
    return m, probes


def mobilenet_v3_small_nopre():
    return mobilenet_v3_small(include_preprocessing=False)


def convnext_tiny():
    m = keras.applications.ConvNeXtTiny(input_shape=(32, 32, 3), weights=None, classes=5)
    return m, ["convnext_tiny_prestem_normalization", "convnext_tiny_stage_0_block_0_depthwise_conv",
               "convnext_tiny_stage_0_block_0_layernorm",
               "convnext_tiny_stage_0_block_0_layer_scale", "convnext_tiny_stage_1_block_2_identity",
               "convnext_tiny_stage_3_block_2_identity", "convnext_tiny_head_layernorm"]


def regnetx002():
    """tf.keras only: Keras 3 has no RegNet."""
    m = keras.applications.RegNetX002(input_shape=(64, 64, 3), weights=None, classes=5)
    return m, ["regnetx002_stem_relu", "regnetx002_Stage_0_XBlock_0_exit_relu", "regnetx002_Stage_1_XBlock_0_exit_relu",
               "regnetx002_Stage_2_XBlock_0_exit_relu", "regnetx002_Stage_3_XBlock_6_exit_relu"]


def inception_resnet_v2():
    """InceptionResNetV2's constructs with one block of each kind, built by
    keras.applications' own conv2d_bn and inception_resnet_block (the whole
    net has 54 M parameters: over 2 MB per file even with low-entropy
    weights). Stem (strided valid convs, max pool), the mixed_5b Inception-A
    module (1x1 / 5x5 / double 3x3 / 3x3 same avg-pool branches), a block35
    (scale 0.17), the mixed_6a reduction, a block17 (1x7 / 7x1, scale 0.1),
    the mixed_7a reduction, the last block8 (scale 1, no activation), conv_7b,
    avg_pool, predictions; at 75x75, the smallest input the application takes.
    The scaled residual is CustomScaleLayer in Keras 3 and tf.keras."""
    if K == "3":
        from keras.src.applications import inception_resnet_v2 as irv2
    else:
        from tf_keras.src.applications import inception_resnet_v2 as irv2
        if irv2.layers is None:  # set by InceptionResNetV2() itself
            irv2.layers = irv2.VersionAwareLayers()
    c = irv2.conv2d_bn
    inp = keras.Input((75, 75, 3), name="input")
    x = c(inp, 32, 3, strides=2, padding="valid")                 # 37
    x = c(x, 32, 3, padding="valid")                              # 35
    x = c(x, 64, 3)
    x = L.MaxPooling2D(3, strides=2, name="stem_pool")(x)         # 17
    b0 = c(x, 96, 1)
    b1 = c(c(x, 48, 1), 64, 5)
    b2 = c(c(c(x, 64, 1), 96, 3), 96, 3)
    bp = c(L.AveragePooling2D(3, strides=1, padding="same", name="mixed_5b_pool")(x), 64, 1)
    x = L.Concatenate(name="mixed_5b")([b0, b1, b2, bp])           # 17x17x320
    x = irv2.inception_resnet_block(x, scale=0.17, block_type="block35", block_idx=1)
    b0 = c(x, 96, 3, strides=2, padding="valid")
    b1 = c(c(c(x, 32, 1), 32, 3), 64, 3, strides=2, padding="valid")
    bp = L.MaxPooling2D(3, strides=2, padding="valid", name="mixed_6a_pool")(x)
    x = L.Concatenate(name="mixed_6a")([b0, b1, bp])               # 8x8x480
    x = irv2.inception_resnet_block(x, scale=0.1, block_type="block17", block_idx=1)
    b0 = c(c(x, 64, 1), 96, 3, strides=2, padding="valid")
    b1 = c(c(x, 64, 1), 64, 3, strides=2, padding="valid")
    b2 = c(c(c(x, 64, 1), 64, 3), 64, 3, strides=2, padding="valid")
    bp = L.MaxPooling2D(3, strides=2, padding="valid", name="mixed_7a_pool")(x)
    x = L.Concatenate(name="mixed_7a")([b0, b1, b2, bp])           # 3x3x704
    x = irv2.inception_resnet_block(x, scale=1.0, activation=None, block_type="block8", block_idx=10)
    x = c(x, 256, 1, name="conv_7b")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dense(5, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="inception_resnet_v2"), ["block35_1_ac", "mixed_6a", "block17_1_ac", "mixed_7a",
                                                            "conv_7b_ac", "avg_pool"]


def tf_tutorial():
    """TensorFlow's image-classification tutorial (flowers, 5 classes) at 64x64:
    a nested data_augmentation Sequential, Rescaling(1/255), three conv/pool
    pairs, Dropout, Flatten, Dense(128), Dense(5) logits (no softmax). Layers
    named as Keras names them in the tutorial."""
    data_augmentation = keras.Sequential([
        L.RandomFlip("horizontal", name="random_flip"),
        L.RandomRotation(0.1, name="random_rotation"),
        L.RandomZoom(0.1, name="random_zoom"),
    ], name="data_augmentation")
    m = keras.Sequential([
        keras.Input((64, 64, 3)),  # the tutorial gives RandomFlip input_shape=; Keras 3 then leaves the outer model unbuilt
        data_augmentation,
        L.Rescaling(1.0 / 255, name="rescaling"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv2d"),
        L.MaxPooling2D(name="max_pooling2d"),
        L.Conv2D(32, 3, padding="same", activation="relu", name="conv2d_1"),
        L.MaxPooling2D(name="max_pooling2d_1"),
        L.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_2"),
        L.MaxPooling2D(name="max_pooling2d_2"),
        L.Dropout(0.2, name="dropout"),
        L.Flatten(name="flatten"),
        L.Dense(128, activation="relu", name="dense"),
        L.Dense(5, name="outputs"),
    ], name="tf_tutorial")
    return m, ["rescaling", "max_pooling2d", "max_pooling2d_2", "dense"]


def augment_zoo():
    """Every Random* preprocessing layer of this Keras (identities at inference),
    then Resizing 64x64 -> 48x56 (bilinear), CenterCrop 40x40, a RandomCrop of
    its input's size (an identity at inference in both Kerases), Rescaling, a
    small conv net. Keras 3 writes no .k3.h5 of it (see below)."""
    inp = keras.Input((64, 64, 3), name="image")
    x = inp
    aug = [L.RandomFlip("horizontal_and_vertical", name="random_flip"),
           L.RandomRotation(0.2, fill_mode="reflect", name="random_rotation"),
           L.RandomZoom((-0.2, 0.1), width_factor=0.1, name="random_zoom"),
           L.RandomTranslation(0.1, (-0.2, 0.2), fill_mode="constant", name="random_translation"),
           L.RandomContrast(0.2, name="random_contrast"),
           L.RandomBrightness(0.2, value_range=(0, 255), name="random_brightness")]
    if K == "3":
        aug += [L.RandomColorDegeneration(0.2, name="random_color_degeneration"),
                L.RandomColorJitter(value_range=(0, 255), brightness_factor=0.1, contrast_factor=0.1,
                                    saturation_factor=(0.4, 0.6), hue_factor=0.1, name="random_color_jitter"),
                L.RandomElasticTransform(name="random_elastic_transform"),
                L.RandomErasing(name="random_erasing"),
                L.RandomGaussianBlur(name="random_gaussian_blur"),
                L.RandomGrayscale(0.2, name="random_grayscale"),
                L.RandomHue(0.1, value_range=(0, 255), name="random_hue"),
                L.RandomInvert(value_range=(0, 255), name="random_invert"),
                L.RandomPerspective(name="random_perspective"),
                L.RandomPosterization(factor=(1, 8), value_range=(0, 255), name="random_posterization"),
                L.RandomSaturation((0.4, 0.6), value_range=(0, 255), name="random_saturation"),
                L.RandomSharpness(0.2, value_range=(0, 255), name="random_sharpness"),
                # a symmetric RandomShear(0.1) writes x_factor (-0.1, 0.1), which Keras 3.15 cannot load back
                L.RandomShear((0.0, 0.1), (0.0, 0.2), name="random_shear")]
    else:
        aug += [L.RandomHeight(0.1, name="random_height"), L.RandomWidth(0.1, name="random_width")]
    for layer in aug:
        x = layer(x)
    x = L.Resizing(48, 56, name="resizing")(x)
    x = L.CenterCrop(40, 40, name="center_crop")(x)
    x = L.RandomCrop(40, 40, name="random_crop")(x)
    x = L.Rescaling(1.0 / 255, name="rescaling")(x)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(x)    # 20x20
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)   # 10x10
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="augment_zoo"), [aug[-1].name, "resizing", "center_crop", "random_crop", "conv1"]


def prelu_net():
    """PReLU with one slope per channel (shared_axes [1, 2]) and with the default
    one slope per element (alpha of shape H x W x C)."""
    inp = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = L.PReLU(shared_axes=[1, 2], name="prelu_shared")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(16, 3, padding="same", name="conv2")(x)
    x = L.PReLU(name="prelu_full")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="prelu_net"), ["prelu_shared", "conv2", "prelu_full", "gap"]


def float16_net():
    """Built under the float16 policy: its weights are stored as float16 (the
    policy is reset to float32 afterwards)."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float16")
    try:
        inp = keras.Input((16, 16, 3), name="image")
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
        x = L.BatchNormalization(name="bn1")(x)
        x = L.MaxPooling2D(2, name="pool1")(x)
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        x = L.Dense(3, activation="softmax", name="predictions")(x)
        model = keras.Model(inp, x, name="float16_net")
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return model, ["conv1", "conv2"]


def flat_input():
    """An MNIST CNN fed (28, 28) images without a channel axis: Reshape((28, 28, 1))
    first, and a Permute of height and width after a pooling."""
    inp = keras.Input((28, 28), name="digits")
    x = L.Reshape((28, 28, 1), name="to_channels")(inp)
    x = L.Conv2D(8, 3, activation="relu", name="conv1")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Permute((2, 1, 3), name="transpose")(x)
    x = L.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="flat_input"), ["to_channels", "transpose", "conv2"]


def group_norm_net():
    """GroupNormalization after convolutions: groups=4 on 8 channels, then groups=-1
    (instance normalization, one group per channel) with scale=False and epsilon 1e-2."""
    inp = keras.Input((16, 16, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = L.GroupNormalization(groups=4, name="gn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = L.GroupNormalization(groups=-1, scale=False, epsilon=1e-2, name="gn2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="group_norm_net"), ["gn1", "pool1", "gn2", "gap"]


def mixed_f16():
    """Built under the mixed_float16 policy (float16 compute, float32 weights),
    with a float32 softmax as the Keras mixed-precision guide recommends. The
    probes compute in float16; expected.h5 stores them as float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((32, 32, 3), name="image")
        x = L.Conv2D(8, 3, strides=2, padding="same", name="conv1")(inp)
        x = L.BatchNormalization(name="bn1")(x)
        x = L.Activation("relu", name="relu1")(x)
        x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        x = L.Dense(5, name="logits")(x)
        x = L.Activation("softmax", dtype="float32", name="predictions")(x)
        m = keras.Model(inp, x, name="mixed_f16")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return m, ["conv1", "bn1", "conv2", "gap", "logits"]


def arith_net():
    """Tensor arithmetic in a functional graph: x / 127.5 - 1 on the input, a hard
    swish written as x * (relu6(x + 3) * (1/6)), a squeeze-excite whose squeeze is
    a mean over axes 1, 2 (keepdims) reshaped to channels. Keras 3 writes the
    operators and keras.ops calls as op layers, tf.keras as TFOpLambda layers
    (tf.nn.relu6, tf.math.reduce_mean). Keras 3 writes arith_net.k3.h5 but cannot
    load it back ("Unknown layer: 'TrueDivide'": its legacy .h5 loader knows no op
    layers); the .keras, .weights.h5 + .json and tf.keras files load."""
    relu6 = keras.ops.relu6 if K == "3" else tf.nn.relu6
    mean = (lambda t: keras.ops.mean(t, axis=[1, 2], keepdims=True)) if K == "3" else \
        (lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True))
    inp = keras.Input((32, 32, 3), name="image")
    x = inp / 127.5 - 1
    x = L.Conv2D(8, 3, strides=2, padding="same", name="conv1")(x)          # 16x16x8
    x = x * (relu6(x + 3) * (1.0 / 6))
    s = mean(x)                                                              # 1x1x8
    s = L.Reshape((8,), name="squeeze")(s)
    s = L.Dense(8, activation="sigmoid", name="excite")(s)
    s = L.Reshape((1, 1, 8), name="excite_reshape")(s)
    x = L.Multiply(name="scale")([x, s])
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="arith_net"), ["conv1", "squeeze", "excite", "scale", "gap"]


def low_entropy_weights(model, input_scale=1.0):
    """Deterministic weights that deflate to almost nothing, for the big
    applications. Every kernel repeats one fixed sequence of 4093 values from
    -1, 0, 1 (a prime period: no two output channels get the same weights, and
    no layer lines up with the previous one's pattern), scaled like He
    initialisation; biases and BN betas are 0.01 * (1 + i % 5), BN gammas 1.
    BN moving_mean / moving_variance are the batch statistics of one
    training-mode pass over a fixed random batch, so inference normalises as
    a trained net would and 50-100 layers stay finite (the only per-channel
    values in the file: a few hundred KB). LayerNormalization gammas are
    1 + 0.25 * the same sequence (0.75, 1, 1.25), its betas as biases; an
    adaptable Normalization (EfficientNet's) gets ImageNet's mean and variance
    of 0..1 pixels; the calibration batch is scaled by input_scale."""
    levels = np.random.default_rng(4093).integers(-1, 2, 4093).astype("float64")
    bns, i = [], 0
    for layer in iter_layers(model):
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, L.Normalization):
            mean, var = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]) ** 2
            layer.set_weights([mean.reshape(ws[0].shape).astype(ws[0].dtype), var.reshape(ws[1].shape).astype(ws[1].dtype)]
                              + ws[2:])
            layer.finalize_state()  # the call reads mean / variance computed from the weights
            continue
        if isinstance(layer, L.LayerNormalization):
            roles = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else [])
            layer.set_weights([(1.0 + 0.25 * np.resize(levels, w.shape) if r == "gamma" else
                                np.full(w.shape, 0.01 * (1 + i % 5))).astype(w.dtype) for w, r in zip(ws, roles)])
            i += 1
            continue
        if isinstance(layer, L.BatchNormalization):
            bns.append(layer)
            roles = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else []) + ["mean", "var"]
            layer.set_weights([np.full(w.shape, {"gamma": 1.0, "beta": 0.01 * (1 + i % 5), "mean": 0.0, "var": 1.0}[r],
                                       w.dtype) for w, r in zip(ws, roles)])
            i += 1
            continue
        new = []
        for j, w in enumerate(ws):
            if w.ndim == 1:
                new.append(np.full(w.shape, 0.01 * (1 + i % 5), w.dtype))
            else:
                fan_in = int(np.prod(w.shape[:-1]))
                if j == 0 and isinstance(layer, (L.DepthwiseConv2D, L.SeparableConv2D)):  # (kh, kw, c, mult)
                    fan_in = w.shape[0] * w.shape[1]
                pattern = np.resize(levels, w.size).reshape(w.shape)
                new.append((pattern * np.sqrt(2.0 / fan_in) / levels.std()).astype(w.dtype))
            i += 1
        layer.set_weights(new)
    if bns:
        calib = np.random.default_rng(5).uniform(0, 1, (32,) + tuple(model.input_shape[1:])).astype("float32")
        calib *= np.float32(input_scale)
        xs = keras.Model(model.input, [bn.input for bn in bns])(calib, training=True)
        for bn, x in zip(bns, xs):
            x = np.asarray(x, dtype="float64")
            ws = bn.get_weights()
            ws[-2] = x.mean(axis=(0, 1, 2)).astype("float32")
            ws[-1] = x.var(axis=(0, 1, 2)).astype("float32")
            bn.set_weights(ws)


def deflate_keras_archive(path):
    """Keras 3 stores a .keras zip's entries uncompressed; rewrite the same
    entries deflated (Keras and any zip reader load it unchanged)."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path + ".tmp", "w") as z:
        for info, data in entries:
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data, compresslevel=9)
    os.replace(path + ".tmp", path)


def gzip_h5(path):
    """Rewrites an HDF5 file with every dataset over 16 KiB stored as one
    gzip-filtered chunk (one chunk keeps a kernel's repeats in one deflate
    stream; libhdf5 and h5py decompress it transparently), in the HDF5 1.10
    file format (compact groups, no chunk B-trees: Keras's 1.0-format
    structure alone is ~1 MB for InceptionV3). Groups, attributes and their
    types are copied as they are."""
    def copy_attrs(src, dst):
        for k in src.attrs:
            dst.attrs.create(k, src.attrs[k], dtype=src.attrs.get_id(k).dtype)

    def copy_group(src, dst):
        copy_attrs(src, dst)
        for k, obj in src.items():
            if isinstance(obj, h5py.Group):
                copy_group(obj, dst.create_group(k))
            elif obj.nbytes > 16384:  # small ones stay contiguous: a chunk index costs more than they do
                copy_attrs(obj, dst.create_dataset(k, data=obj[()], chunks=obj.shape, compression="gzip", compression_opts=9))
            else:
                copy_attrs(obj, dst.create_dataset(k, data=obj[()]))

    with h5py.File(path) as src, h5py.File(path + ".tmp", "w", libver=("v110", "v110")) as dst:
        copy_group(src, dst)
    os.replace(path + ".tmp", path)


def count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


# Nets that rescale 0..255 pixels themselves get their expected.h5 input (and
# low-entropy calibration batch) in 0..255; the others 0..1.
INPUT_SCALE = {"zoo": 255.0, "efficientnet_b0": 255.0, "efficientnet_v2_b0": 255.0, "mobilenet_v3_small": 255.0,
               "convnext_tiny": 255.0, "regnetx002": 255.0, "tf_tutorial": 255.0, "augment_zoo": 255.0,
               "arith_net": 255.0}


def write_expected(model, probes, path, input_scale=1.0):
    shape = (2,) + tuple(model.input_shape[1:])
    x = rng.uniform(0, 1, shape).astype("float32")
    if input_scale != 1.0:
        x *= input_scale
    outs = [model.outputs[0]] + [model.get_layer(p).output for p in probes]  # a second output is probed by name
    probe_model = keras.Model(model.inputs, outs)
    ys = probe_model.predict(x, verbose=0)
    with h5py.File(path, "w") as f:
        f["input"] = x
        f["output"] = np.asarray(ys[0])
        for p, y in zip(probes, ys[1:]):
            y = np.asarray(y)
            f[p] = y.astype("float32") if y.dtype == np.float16 else y  # mixed_f16's float16 layers
        f.attrs["total_params"] = model.count_params()
        f.attrs["trainable_params"] = count(model.trainable_weights)
        f.attrs["non_trainable_params"] = count(model.non_trainable_weights)
        f.attrs["keras_version"] = keras.__version__


SIZE_LIMIT = 2 << 20  # bytes; a low-entropy net's file over this is compressed (see the docstring)
nets_named = set()


def save_all(name, build, formats, low_entropy=False):
    nets_named.add(name)
    if args.only is not None and name not in args.only:
        return
    model, probes = build()
    input_scale = INPUT_SCALE.get(name, 1.0)
    if low_entropy:
        low_entropy_weights(model, input_scale)
    else:
        randomize_batchnorm(model)
        for layer in iter_layers(model):  # move every other weight off its initial value too
            ws = layer.get_weights()
            if isinstance(layer, L.PReLU):  # slopes 0.05..0.4, not N(0, 0.05) around the zero initialiser
                layer.set_weights([rng.uniform(0.05, 0.4, w.shape).astype(w.dtype) for w in ws])
            elif ws and not isinstance(layer, (L.BatchNormalization, L.Normalization)):
                layer.set_weights([(w + rng.normal(0, 0.05, w.shape)).astype(w.dtype) for w in ws])
    base = os.path.join(args.out, f"{name}.k{K}")
    if "keras" in formats:
        model.save(base + ".keras")
        if low_entropy:
            deflate_keras_archive(base + ".keras")
    if "h5" in formats:
        model.save(base + ".h5")
        if low_entropy and os.path.getsize(base + ".h5") > SIZE_LIMIT:
            gzip_h5(base + ".h5")
    if "weights" in formats:
        model.save_weights(base + ".weights.h5")
        if low_entropy and os.path.getsize(base + ".weights.h5") > SIZE_LIMIT:
            gzip_h5(base + ".weights.h5")
        with open(base + ".json", "w") as f:
            f.write(model.to_json())
    if "legacy_weights" in formats:
        model.save_weights(base + ".w.h5")
        if low_entropy and os.path.getsize(base + ".w.h5") > SIZE_LIMIT:
            gzip_h5(base + ".w.h5")
        with open(base + ".json", "w") as f:
            f.write(model.to_json())
    if name != "with_lambda":
        write_expected(model, probes, base + ".expected.h5", input_scale)
    print("wrote", base, formats, flush=True)


every = ["keras", "h5", "weights"] if K == "3" else ["h5", "legacy_weights", "weights"]
for net, build in [("plain_cnn", plain_cnn), ("vgg", vgg), ("residual", residual), ("zoo", zoo), ("nested", nested)]:
    save_all(net, build, every)
save_all("mobilenet_v2", mobilenet, ["keras"] if K == "3" else ["h5"])
save_all("with_lambda", with_lambda, ["keras"] if K == "3" else ["h5"])
for net, build in [("mnist_convnet", mnist_convnet), ("vgg_valid", vgg_valid), ("pool3", pool3),
                   ("mini_xception", mini_xception), ("bn_head", bn_head), ("binary_sigmoid", binary_sigmoid),
                   ("two_outputs", two_outputs)]:
    save_all(net, build, every)
for net, build in [("resnet50v2", resnet50v2), ("inception_v3", inception_v3), ("mobilenet_v1", mobilenet_v1)]:
    save_all(net, build, ["keras"] if K == "3" else ["h5"], low_entropy=True)
for net, build in [("efficientnet_b0", efficientnet_b0), ("efficientnet_v2_b0", efficientnet_v2_b0),
                   ("mobilenet_v3_small", mobilenet_v3_small), ("mobilenet_v3_small_nopre", mobilenet_v3_small_nopre),
                   ("convnext_tiny", convnext_tiny), ("regnetx002", regnetx002),
                   ("inception_resnet_v2", inception_resnet_v2)]:
    if net == "regnetx002" and K == "3":
        nets_named.add(net)  # Keras 3 has no RegNet
        continue
    save_all(net, build, ["keras"] if K == "3" else ["h5"], low_entropy=True)
save_all("tf_tutorial", tf_tutorial, every, low_entropy=True)  # Dense(128) on 8x8x64: 0.5 M parameters
# Keras 3's legacy .h5 writer fails on augment_zoo ("TypeError: cannot pickle 'module' object":
# it deep-copies the configs, and the value_range of RandomBrightness, RandomColorDegeneration,
# RandomPosterization, RandomSaturation and RandomSharpness is a TrackedList), so no .k3.h5.
save_all("augment_zoo", augment_zoo, ["keras", "weights"] if K == "3" else every)
for net, build in [("prelu_net", prelu_net), ("mixed_f16", mixed_f16), ("arith_net", arith_net), ("flat_input", flat_input),
                   ("float16_net", float16_net), ("group_norm_net", group_norm_net)]:
    save_all(net, build, every)
if args.only is not None and set(args.only) - nets_named:
    sys.exit("make_fixtures.py: no net named " + ", ".join(sorted(set(args.only) - nets_named)))


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


if K == "2" and (args.only is None or "plain_cnn" in args.only):
    chunked_attributes_copy()
