#!/usr/bin/env python3
"""SegKit training run for Keras 3 on TensorFlow's distributed engine.

`segkit export-training` wrote this folder: segmenter.keras (the segmenter as
SegKit built it, a Keras 3 file), this script, and the settings of the run (the
`CONFIG = ...` line below, with the command that made it). Running the script
trains the segmenter the way `segkit train` would with the same options, on
Keras 3 + TensorFlow, on one machine's GPUs (or its CPU) or on several machines.
It needs Python 3.9+, TensorFlow 2.16 or later (which brings Keras 3) and
h5py (a Keras dependency); scipy only for --border-weight runs. No SegKit.

Run it (from anywhere; paths are relative to this file's folder):

  python train.py --check          # no training: loads the segmenter, checks the
                                   # settings and data, and compares the loss of
                                   # the first training batch with SegKit's
                                   # (exit 0: equal within 1e-5; 1: not; 2: an error)
  python train.py                  # trains; writes trained/best.keras, trained/history.csv
  python train.py --epochs 3 --out /tmp/run1

Several machines (MultiWorkerMirroredStrategy): start the script once per
worker with TF_CONFIG naming all workers and this one's index; every worker
needs the data at the same paths. Two workers on one machine:

  TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]},
              "task": {"type": "worker", "index": 0}}' python train.py &
  TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]},
              "task": {"type": "worker", "index": 1}}' python train.py

Without TF_CONFIG the script uses MirroredStrategy: every GPU of this machine,
or its CPU (--cpu-replicas N splits the CPU into N replicas, to try the
multi-replica path without GPUs).

Distribution rule. `batch` is the GLOBAL batch: each step takes `batch`
samples, split as evenly as possible over all replicas of all workers; the
loss is normalised over the counted pixels of the whole global batch (not per
replica) and the replicas' gradients are summed, so a step computes the same
update as SegKit's one-device step whatever the number of replicas; trainable
BatchNormalization layers are synchronised across replicas (SegKit takes
statistics over the whole batch); the learning rate is unchanged. Options that
change the run on purpose: --batch-per-replica (each replica takes `batch`
samples, so the global batch is batch x replicas) and --scale-lr (multiply the
learning rate by global batch / `batch`: the linear scaling rule of Goyal et
al. 2017; without --batch-per-replica the factor is 1). Only the chief (worker
0, or the task of type "chief") writes to --out; the other workers save to
temporary folders they delete, as TensorFlow's multi-worker guide recommends.

What it reproduces: the training and validation pairs (the exact lists and
order SegKit chose, its validation hold-out included), image decoding (PNG
grey/RGB/palette, 8/16-bit; JPEG with EXIF orientation applied, as SegKit
does), grey images repeated to 3 channels for colour segmenters, mask
decoding (class ids, palette indices, colour tables, Oxford-IIIT Pet trimaps),
input scaling, SegKit's size rule (mirror padding of the image, masks laid on
the output grid, uncovered output pixels ignored), the batching (shuffled
batches of one size; size buckets for mixed sizes; random crops padded with
ignored pixels; one image per batch for rescaled whole images), the kinds and
parameter ranges of the augmentations (scale, crop, flip, shift, elastic),
the losses with SegKit's normalisation (a weighted sum over the counted pixels
divided by their number; class weights; U-Net border weights; soft Dice over
the batch), Adam (epsilon 1e-7) and SGD with momentum, decoupled weight decay,
the per-epoch learning-rate schedules, frozen layers (frozen BatchNormalization
in inference mode), the validation loss and metrics (pixel accuracy, mIoU as
SegKit defines them), early stopping on validation mIoU with the best epoch
kept, and SegKit's history.csv columns.

What it does not: the random draws (data order, augmentation, dropout masks
come from TensorFlow's generators, not SegKit's), bit-identical arithmetic
(convolution algorithms and summation order differ: losses agree to about
1e-6), SegKit's frozen-encoder feature cache (a speed-up only), checkpoints and
--resume, and --skip-bad (the exported lists are already the usable pairs).
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import time
import zipfile
import zlib

CONFIG = None  # segkit export-training writes this run's settings here

FORMAT = "segkit-training/1"
HERE = os.path.dirname(os.path.abspath(__file__))
HISTORY_HEADER = "epoch,loss,val_loss,val_pixel_accuracy,val_mean_iou,learning_rate,seconds"
CHECK_TOLERANCE = 1e-5
AUGMENTATIONS = ("flip", "shift", "elastic")
LOSSES = ("ce", "weighted-ce", "dice", "ce+dice")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Oxford-IIIT Pet trimaps (1 pet, 2 background, 3 border) to class ids, as
# SegKit's DatasetLayout.pets maps them for each `border` choice.
PET_TABLES = {
    "ignore": {1: 0, 2: 1, 3: 255},
    "pet": {1: 0, 2: 1, 3: 0},
    "background": {1: 0, 2: 1, 3: 1},
    "class": {1: 0, 2: 2, 3: 1},
}

np = tf = keras = None  # imported after the arguments are parsed (so --help is quick)


class Fail(Exception):
    """A problem with the settings, the data or the model: reported without a traceback."""


# ---------------------------------------------------------------------------
# Settings


def load_config(path):
    """The run's settings: --config FILE, else the CONFIG written by SegKit."""
    if path:
        try:
            with open(path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise Fail(f"--config {path}: {e}")
    elif CONFIG is not None:
        cfg = dict(CONFIG)
    else:
        raise Fail("this is the template: `segkit export-training` writes the run's settings into it "
                   "(or give --config FILE.json)")
    if cfg.get("format") != FORMAT:
        raise Fail(f"settings format {cfg.get('format')!r}; this script reads {FORMAT!r}")
    defaults = {"segmenter": "segmenter.keras", "val_fraction": 0.0, "epochs": 10, "batch": 16, "optimizer": "adam",
                "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "schedule": "constant", "loss": "ce", "augment": [],
                "seed": 0, "frozen_layers": [], "input_scale": "unit", "placement": {"rows": {}, "cols": {}}}
    for key, value in defaults.items():
        if cfg.get(key) is None:
            cfg[key] = value
    for key in ("classes", "data"):
        if cfg.get(key) is None:
            raise Fail(f"the settings have no {key!r}")

    def need(ok, message):
        if not ok:
            raise Fail("settings: " + message)

    need(isinstance(cfg["classes"], int) and cfg["classes"] >= 1, f"classes {cfg['classes']!r} is not a count")
    need(cfg["loss"] in LOSSES, f"loss {cfg['loss']!r} is not one of {', '.join(LOSSES)}")
    need(cfg["optimizer"] in ("adam", "sgd"), f"optimizer {cfg['optimizer']!r} is not adam or sgd")
    need(cfg["schedule"] in ("constant", "step", "cosine"), f"schedule {cfg['schedule']!r} is not constant, step or cosine")
    bad = [a for a in cfg["augment"] if a not in AUGMENTATIONS]
    need(not bad, f"augment {bad} is not among {', '.join(AUGMENTATIONS)}")
    need(int(cfg["batch"]) >= 1 and int(cfg["epochs"]) >= 1, "batch and epochs must be at least 1")
    if cfg.get("class_weights") is not None:
        need(len(cfg["class_weights"]) == cfg["classes"], f"class_weights has {len(cfg['class_weights'])} weights for {cfg['classes']} classes")
    if cfg.get("crop") is not None:
        need(len(cfg["crop"]) == 2 and min(cfg["crop"]) >= 1, f"crop {cfg['crop']!r} is not [height, width]")
    if cfg.get("scale_range") is not None:
        a, b = cfg["scale_range"]
        need(0 < a <= b, f"scale_range {cfg['scale_range']!r} is not [low, high] with 0 < low <= high")
    parse_input_scale(cfg["input_scale"])
    for d in (cfg["data"], cfg.get("val_data")):
        if d is not None:
            need(d.get("kind") in ("folder", "voc", "pets", "hdf5") and d.get("path"), f"data {d!r} is not a folder, voc, pets or hdf5 source")
    placement = cfg["placement"]
    for axis in ("rows", "cols"):
        table = {}
        for length, entry in (placement.get(axis) or {}).items():
            need(len(entry) == 4, f"placement {axis} {length}: {entry!r} is not [pad_before, pad_after, out_start, out_len]")
            table[int(length)] = tuple(int(v) for v in entry)
        placement[axis] = table
    return cfg


def parse_input_scale(text):
    """SegKit's InputScaling: (kind, mean, std)."""
    if text in ("unit", "raw", "symmetric"):
        return (text, 0.0, 1.0)
    if isinstance(text, str) and text.startswith("mean-std:"):
        try:
            m, s = (float(v) for v in text[9:].split(","))
        except ValueError:
            raise Fail(f"input_scale {text!r} is not mean-std:MEAN,STD")
        return ("mean-std", m, s)
    raise Fail(f"input_scale {text!r} is not unit, raw, symmetric or mean-std:M,S")


def resolve(path):
    """A path of the settings: absolute, or relative to this script's folder."""
    return path if os.path.isabs(path) else os.path.join(HERE, path)


def swift_float(x):
    """A Float as Swift prints it (`\\(learningRate)` in SegKit's history.csv):
    the shortest digits that read back, positional from 1e-4 up to 2^24."""
    v = np.float32(x)
    if v == 0:
        return "0.0"
    scientific = np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
    if int(scientific.split("e")[1]) >= -4 and abs(float(v)) < 2 ** 24:
        return np.format_float_positional(v, unique=True, trim="0")
    return scientific


def learning_rate(cfg, epoch, epochs):
    """SegKit's TrainingConfig.learningRate(epoch:) (0-based epoch), in Float arithmetic."""
    lr = np.float32(cfg["lr"])
    if cfg["schedule"] == "step":
        e = np.float32(epoch) / np.float32(max(epochs, 1))
        return lr * np.float32(0.01 if e >= np.float32(0.75) else 0.1 if e >= np.float32(0.5) else 1)
    if cfg["schedule"] == "cosine":
        return lr * np.float32(0.5) * (np.float32(1) + np.float32(math.cos(math.pi * epoch / max(epochs, 1))))
    return lr


# ---------------------------------------------------------------------------
# File headers (what TensorFlow's decoders need to be told to match SegKit's)


def png_header(path):
    """Size, bit depth, colour type and the PLTE chunk's place of a PNG file."""
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return None
        info = {"format": "png", "plte_offset": -1, "plte_count": 0}
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise Fail(f"{path}: truncated PNG")
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR":
                w, h, depth, ctype = struct.unpack(">IIBB", f.read(10))
                info.update(width=w, height=h, depth=depth, ctype=ctype)
                f.seek(length - 10 + 4, 1)
            elif kind == b"PLTE":
                info.update(plte_offset=f.tell() - 8, plte_count=length // 3)
                f.seek(length + 4, 1)
            elif kind in (b"IDAT", b"IEND"):
                break
            else:
                f.seek(length + 4, 1)
        if "width" not in info:
            raise Fail(f"{path}: PNG without IHDR")
        return info


def jpeg_header(path):
    """Display size, components and EXIF orientation of a JPEG file (SegKit's segkit_jpeg.c rules)."""
    with open(path, "rb") as f:
        data = f.read(2)
        if data != b"\xff\xd8":
            return None
        orientation, size, exif_seen = 1, None, False
        while True:
            byte = f.read(1)
            if not byte:
                break
            if byte != b"\xff":
                continue
            marker = f.read(1)
            while marker == b"\xff":
                marker = f.read(1)
            if not marker:
                break
            m = marker[0]
            if m in (0x01, 0xD8) or 0xD0 <= m <= 0xD7:
                continue
            if m in (0xD9, 0xDA):
                break
            length = struct.unpack(">H", f.read(2))[0]
            segment = f.read(length - 2)
            if m == 0xE1 and not exif_seen and len(segment) >= 14 and segment[:6] == b"Exif\0\0":
                exif_seen = True
                orientation = exif_orientation(segment[6:])
            elif m in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF) and size is None:
                h, w, comps = struct.unpack(">HHB", segment[1:6])
                size = (h, w, comps)
        if size is None:
            raise Fail(f"{path}: JPEG without a frame header")
        h, w, comps = size
        if comps not in (1, 3):
            raise Fail(f"{path}: a JPEG with {comps} colour components (SegKit reads grey or RGB JPEGs)")
        if orientation >= 5:
            h, w = w, h
        return {"format": "jpeg", "width": w, "height": h, "channels": comps, "orientation": orientation}


def exif_orientation(tiff):
    """The Orientation tag of IFD0, 1 when absent or unreadable (as SegKit)."""
    if tiff[:4] == b"MM\0*":
        e = ">"
    elif tiff[:4] == b"II*\0":
        e = "<"
    else:
        return 1
    n = len(tiff)
    ifd = struct.unpack(e + "I", tiff[4:8])[0]
    if ifd > n or n - ifd < 2:
        return 1
    entries = struct.unpack(e + "H", tiff[ifd:ifd + 2])[0]
    for i in range(entries):
        at = ifd + 2 + i * 12
        if at + 12 > n:
            return 1
        tag, kind = struct.unpack(e + "HH", tiff[at:at + 4])
        if tag == 0x0112 and kind == 3:
            v = struct.unpack(e + "H", tiff[at + 8:at + 10])[0]
            return v if 1 <= v <= 8 else 1
    return 1


def image_header(path):
    try:
        info = png_header(path) or jpeg_header(path)
    except OSError as e:
        raise Fail(f"{path}: {e.strerror}")
    if info is None:
        raise Fail(f"{path}: neither a PNG nor a JPEG file")
    if info["format"] == "png":
        info["channels"] = 1 if info["ctype"] in (0, 4) else 3
    return info


def palette_chunk(count):
    """A PLTE chunk of `count` entries whose entry i is the colour (i, 0, 0): a
    palette PNG with it decodes to its palette indices in the red channel."""
    body = b"PLTE" + bytes(v for i in range(count) for v in (i, 0, 0))
    return struct.pack(">I", 3 * count) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


# ---------------------------------------------------------------------------
# The labelled sets


def list_layout(source):
    """(root, [(image, mask), ...]) of a folder, voc or pets source (SegKit's DatasetLayout)."""
    kind, path = source["kind"], resolve(source["path"])
    if kind == "folder":
        images = sorted(n for n in os.listdir(os.path.join(path, "images"))
                        if not n.startswith(".") and n.rsplit(".", 1)[-1].lower() in ("png", "jpg", "jpeg") and "." in n)
        masks = {}
        for n in sorted(os.listdir(os.path.join(path, "masks"))):
            if n.startswith("."):
                continue
            stem = os.path.splitext(n)[0]
            if stem not in masks or n.endswith(".png"):
                masks[stem] = n
        pairs = [("images/" + n, "masks/" + masks.get(os.path.splitext(n)[0], os.path.splitext(n)[0] + ".png")) for n in images]
        return path, pairs
    if kind == "voc":
        root = voc_root(path)
        split = source.get("split") or "train"
        names = read_list(os.path.join(root, "ImageSets", "Segmentation", split + ".txt"))
        return root, [(f"JPEGImages/{n}.jpg", f"SegmentationClass/{n}.png") for n in names]
    split = source.get("split") or "trainval"
    if split == "all":
        names = sorted(n[:-4] for n in os.listdir(os.path.join(path, "annotations", "trimaps")) if n.endswith(".png") and not n.startswith("."))
    else:
        names = read_list(os.path.join(path, "annotations", split + ".txt"))
    return path, [(f"images/{n}.jpg", f"annotations/trimaps/{n}.png") for n in names]


def voc_root(path):
    for root in (path, os.path.join(path, "VOC2012"), os.path.join(path, "VOCdevkit", "VOC2012")):
        if os.path.isdir(os.path.join(root, "ImageSets", "Segmentation")):
            return root
    raise Fail(f"voc {path}: no ImageSets/Segmentation in it, its VOC2012/ or VOCdevkit/VOC2012/")


def read_list(path):
    try:
        with open(path) as f:
            lines = [line.strip() for line in f]
    except OSError:
        raise Fail(f"{path}: missing")
    return [line.split(" ")[0] for line in lines if line and not line.startswith("#")]


class LabelledSet:
    """Image/mask files (or HDF5 samples) with what decoding them takes, known
    from their headers before training: sizes, channels, bit depths, palettes,
    EXIF orientations."""

    def __init__(self, name, source, pairs=None, indices=None, cfg=None, channels=None):
        self.name, self.source, self.channels = name, source, channels
        self.kind = source["kind"]
        self.classes = cfg["classes"]
        self.mask_colors = cfg.get("mask_colors") if self.kind == "folder" else None
        if self.kind == "hdf5":
            self._open_hdf5(resolve(source["path"]), indices)
        else:
            self.root = voc_root(resolve(source["path"])) if self.kind == "voc" else resolve(source["path"])
            self.pairs = [tuple(p) for p in pairs]
            self._scan()

    def __len__(self):
        return len(self.sizes)

    def _open_hdf5(self, path, indices):
        import h5py
        try:
            self.h5 = h5py.File(path, "r")
        except OSError as e:
            raise Fail(f"{path}: {e}")
        images, masks = self.h5.get("images"), self.h5.get("masks")
        if images is None or masks is None:
            raise Fail(f"{path}: expected the datasets 'images' and 'masks'")
        shape = tuple(images.shape) + ((1,) if images.ndim == 3 else ())
        if len(shape) != 4 or tuple(masks.shape) != shape[:3]:
            raise Fail(f"{path}: images {images.shape} and masks {masks.shape} are not (N,H,W[,C]) and (N,H,W)")
        self.h5_images, self.h5_masks = images, masks
        self.byte_valued = images.dtype.kind in "iu"
        self.source_channels = shape[3]
        if self.channels != shape[3] and not (self.channels == 3 and shape[3] == 1):
            raise Fail(f"{path}: {shape[3]}-channel images for a {self.channels}-channel segmenter")
        self.indices = list(range(shape[0])) if indices is None else [int(i) for i in indices]
        if any(i < 0 or i >= shape[0] for i in self.indices):
            raise Fail(f"{path}: sample indices outside 0..{shape[0] - 1}")
        self.sizes = [(shape[1], shape[2])] * len(self.indices)
        self.names = [f"{os.path.basename(path)} sample {i}" for i in self.indices]

    def _scan(self):
        self.byte_valued = True
        self.sizes, self.names, self.image_info, self.mask_info = [], [], [], []
        for image, mask in self.pairs:
            ipath, mpath = os.path.join(self.root, image), os.path.join(self.root, mask)
            if not os.path.exists(ipath):
                raise Fail(f"{ipath}: listed but missing")
            if not os.path.exists(mpath):
                raise Fail(f"{ipath} has no mask (expected {mpath})")
            info, minfo = image_header(ipath), image_header(mpath)
            if minfo["format"] != "png":
                raise Fail(f"{mpath}: a JPEG mask; masks must be lossless (PNG)")
            if (minfo["width"], minfo["height"]) != (info["width"], info["height"]):
                raise Fail(f"{mpath} is {minfo['width']}x{minfo['height']}; its image {image} is {info['width']}x{info['height']}")
            if info["channels"] == 3 and self.channels == 1:
                raise Fail(f"{ipath}: a colour image, and this segmenter takes grey images (1 channel)")
            ctype = minfo["ctype"]
            if self.mask_colors is not None:
                if not (ctype == 3 or (ctype in (2, 6) and minfo["depth"] == 8)):
                    raise Fail(f"{mpath}: mask_colors needs an 8-bit RGB (or palette) mask")
            elif self.kind == "pets":
                if ctype not in (0, 3):
                    raise Fail(f"{mpath}: expected a one-channel trimap")
            elif ctype not in (0, 3, 4):
                raise Fail(f"{mpath}: an RGB mask; a mask holds one class id per pixel (grey or palette PNG), or give mask_colors")
            self.sizes.append((info["height"], info["width"]))
            self.names.append(image)
            self.image_info.append(info)
            self.mask_info.append(minfo)

    # -- TensorFlow decoding -------------------------------------------------

    def tf_decoder(self, ignore):
        """A function sample index -> (image float32 HxWxC raw values, mask int32 HxW)."""
        channels, classes = self.channels, self.classes
        if self.kind == "hdf5":
            images, masks, index, replicate = self.h5_images, self.h5_masks, self.indices, self.channels != self.source_channels

            def read(i):
                k = index[int(i)]
                x = np.asarray(images[k], dtype=np.float32)
                x = x.reshape(x.shape[0], x.shape[1], -1)
                if replicate:
                    x = np.repeat(x, 3, axis=2)
                m = np.clip(np.asarray(masks[k], dtype=np.int64), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
                return x, m

            def decode(i):
                x, m = tf.numpy_function(read, [i], (tf.float32, tf.int32), stateful=False)
                x.set_shape([None, None, channels])
                m.set_shape([None, None])
                return x, check_labels(m, i)
        else:
            roots = self.root + "/"
            ipaths = tf.constant([roots + p[0] for p in self.pairs])
            mpaths = tf.constant([roots + p[1] for p in self.pairs])
            is_png = tf.constant([i["format"] == "png" for i in self.image_info])
            grey = tf.constant([i["channels"] == 1 for i in self.image_info])
            deep = tf.constant([i.get("depth") == 16 for i in self.image_info])
            # TensorFlow scales 1/2/4-bit grey to 0..255; SegKit keeps the values.
            low = tf.constant([(2 ** i["depth"] - 1) / 255 if i["format"] == "png" and i["ctype"] == 0 and i["depth"] < 8 else 1.0
                               for i in self.image_info], tf.float32)
            orient = tf.constant([i.get("orientation", 1) for i in self.image_info], tf.int32)
            m_palette = tf.constant([m["ctype"] == 3 for m in self.mask_info])
            m_deep = tf.constant([m["depth"] == 16 for m in self.mask_info])
            m_low = tf.constant([255 // (2 ** m["depth"] - 1) if m["ctype"] == 0 and m["depth"] < 8 else 1 for m in self.mask_info], tf.int32)
            m_plte_at = tf.constant([m["plte_offset"] for m in self.mask_info], tf.int32)
            m_plte_n = tf.constant([m["plte_count"] for m in self.mask_info], tf.int32)
            patches = tf.constant([b""] + [palette_chunk(n) for n in range(1, 257)])
            colour_table = pet_table = None
            if self.mask_colors is not None:
                keys = [r << 16 | g << 8 | b for r, g, b in self.mask_colors]
                colour_table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int64), tf.range(len(keys), dtype=tf.int32)), -1)
            if self.kind == "pets":
                table = np.full(65536, -2, np.int32)
                for k, v in PET_TABLES[self.source.get("border") or "ignore"].items():
                    table[k] = v
                pet_table = tf.constant(table)

            def decode_image(i):
                raw = tf.io.read_file(ipaths[i])

                def png():
                    def grey_png():
                        x = tf.cond(deep[i], lambda: tf.cast(tf.io.decode_png(raw, 1, tf.uint16), tf.float32) / 257.0,
                                    lambda: tf.cast(tf.io.decode_png(raw, 1), tf.float32) * low[i])
                        return tf.tile(x, [1, 1, channels])

                    def colour_png():
                        x = tf.cond(deep[i], lambda: tf.cast(tf.io.decode_png(raw, 3, tf.uint16), tf.float32) / 257.0,
                                    lambda: tf.cast(tf.io.decode_png(raw, 3), tf.float32))
                        return x[..., :channels]
                    return tf.cond(grey[i], grey_png, colour_png)

                def jpeg():
                    x = tf.cond(grey[i], lambda: tf.tile(tf.io.decode_jpeg(raw, 1, dct_method="INTEGER_ACCURATE"), [1, 1, channels]),
                                lambda: tf.io.decode_jpeg(raw, 3, dct_method="INTEGER_ACCURATE")[..., :channels])
                    return tf.cast(orient_image(x, orient[i]), tf.float32)
                x = tf.cond(is_png[i], png, jpeg)
                x.set_shape([None, None, channels])
                return x

            def decode_mask(i):
                raw = tf.io.read_file(mpaths[i])
                if colour_table is not None:
                    rgb = tf.cast(tf.io.decode_png(raw, 3), tf.int64)
                    m = colour_table.lookup(rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2])
                    with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(m >= 0), [
                            "a mask colour is not in mask_colors:", mpaths[i]])]):
                        return tf.identity(m)

                def palette():
                    n = m_plte_n[i]
                    at = m_plte_at[i]
                    patched = tf.strings.join([tf.strings.substr(raw, 0, at), tf.gather(patches, n),
                                               tf.strings.substr(raw, at + 12 + 3 * n, -1)])
                    return tf.cast(tf.io.decode_png(patched, 3)[..., 0], tf.int32)

                def grey_mask():
                    return tf.cond(m_deep[i], lambda: tf.cast(tf.io.decode_png(raw, 1, tf.uint16)[..., 0], tf.int32),
                                   lambda: tf.cast(tf.io.decode_png(raw, 1)[..., 0], tf.int32) // m_low[i])
                m = tf.cond(m_palette[i], palette, grey_mask)
                if pet_table is not None:
                    m = tf.gather(pet_table, m)
                    with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(m > -2), [
                            "a trimap value is not 1, 2 or 3:", mpaths[i]])]):
                        m = tf.identity(m)
                return m

            names = tf.constant(self.names)

            def decode(i):
                x, m = decode_image(i), decode_mask(i)
                m.set_shape([None, None])
                with tf.control_dependencies([tf.debugging.assert_equal(
                        tf.shape(x)[:2], tf.shape(m), message=tf.strings.join(["image and mask sizes differ: ", names[i]]))]):
                    m = tf.identity(m)
                return x, check_labels(m, i)

        def check_labels(m, i):
            ok = tf.logical_or(tf.logical_and(m >= 0, m < classes), tf.equal(m, ignore))
            with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(ok), [
                    "a mask holds a class id outside 0..", classes - 1, "(nor the ignore label) in sample", i])]):
                return tf.identity(m)

        return decode


def orient_image(x, orientation):
    """EXIF orientation 1-8 applied (display (r, c) from stored pixels, as SegKit and Pillow's exif_transpose)."""
    t = lambda v: tf.transpose(v, [1, 0, 2])  # noqa: E731
    return tf.switch_case(orientation - 1, [
        lambda: x,
        lambda: tf.reverse(x, [1]),
        lambda: tf.reverse(x, [0, 1]),
        lambda: tf.reverse(x, [0]),
        lambda: t(x),
        lambda: tf.reverse(t(x), [1]),
        lambda: tf.reverse(t(x), [0, 1]),
        lambda: tf.reverse(t(x), [0]),
    ])


def open_sets(cfg, channels):
    """(train, val or None) as SegKit split them."""
    data, val_data = cfg["data"], cfg.get("val_data")
    train_pairs = val_pairs = train_idx = val_idx = None
    if data["kind"] == "hdf5":
        train_idx = cfg.get("train_indices")
        val_idx = cfg.get("val_indices")
        if train_idx is None:
            import h5py
            with h5py.File(resolve(data["path"]), "r") as f:
                n = f["images"].shape[0]
            train_idx, held = list(range(n)), holdout(n, cfg) if val_data is None else 0
            if held:
                train_idx, val_idx = train_idx[:n - held], train_idx[n - held:]
    else:
        train_pairs = cfg.get("train_files")
        if train_pairs is None:
            _, train_pairs = list_layout(data)
            held = holdout(len(train_pairs), cfg) if val_data is None else 0
            if held:
                train_pairs, val_pairs = train_pairs[:-held], train_pairs[-held:]
        else:
            val_pairs = cfg.get("val_files") if val_data is None else None
    train = LabelledSet("train", data, pairs=train_pairs, indices=train_idx, cfg=cfg, channels=channels)
    val = None
    if val_data is not None:
        if val_data["kind"] == "hdf5":
            val = LabelledSet("val", val_data, indices=cfg.get("val_indices"), cfg=cfg, channels=channels)
        else:
            pairs = cfg.get("val_files") or list_layout(val_data)[1]
            val = LabelledSet("val", val_data, pairs=pairs, cfg=cfg, channels=channels)
    elif val_pairs:
        val = LabelledSet("val", data, pairs=val_pairs, cfg=cfg, channels=channels)
    elif val_idx:
        val = LabelledSet("val", data, indices=val_idx, cfg=cfg, channels=channels)
    if len(train) == 0:
        raise Fail("no training samples")
    return train, val


def holdout(n, cfg):
    """SegKit's --val-fraction: the last max(1, floor(n x fraction)) samples."""
    fraction = float(cfg.get("val_fraction") or 0)
    if fraction <= 0:
        return 0
    held = max(1, int(n * fraction))
    if held >= n:
        raise Fail(f"val_fraction {fraction} leaves no training samples of the {n}")
    return held


# ---------------------------------------------------------------------------
# Batches: SegKit's plans (TrainingBatches.plan, inferenceBatches)


def round_half_away(x):
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def train_plan(sizes, cfg, epoch, batch):
    """The batches (lists of sample positions) of one epoch."""
    rng = np.random.default_rng([int(cfg["seed"]), epoch, 0x5E6C17])
    crop, scale = cfg.get("crop"), cfg.get("scale_range")
    b = 1 if scale is not None and crop is None else batch
    uniform = len(set(sizes)) == 1
    if crop is not None or (scale is None and uniform) or b == 1:
        order = rng.permutation(len(sizes))
        return [order[k:k + b].tolist() for k in range(0, len(order), b)]
    by_size = {}
    for i, s in enumerate(sizes):
        by_size.setdefault(s, []).append(i)
    batches = []
    for key in sorted(by_size):
        members = rng.permutation(by_size[key])
        batches += [members[k:k + b].tolist() for k in range(0, len(members), b)]
    return [batches[k] for k in rng.permutation(len(batches))]


def inference_plan(sizes, batch):
    """Data order, runs of one size cut at `batch` (SegKit's validation batches)."""
    out, current = [], []
    for i, s in enumerate(sizes):
        if current and (len(current) == batch or sizes[current[0]] != s):
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out


def needed_lengths(train, val, cfg, check_positions):
    """The image heights and widths the placement table must cover."""
    rows, cols = set(), set()
    crop, scale = cfg.get("crop"), cfg.get("scale_range")
    if crop is not None:
        rows.add(crop[0])
        cols.add(crop[1])
    elif scale is not None:
        a, b = np.float32(scale[0]), np.float32(scale[1])
        for h, w in set(train.sizes):
            rows.update(range(max(1, round_half_away(float(np.float32(h) * a))), max(1, round_half_away(float(np.float32(h) * b))) + 1))
            cols.update(range(max(1, round_half_away(float(np.float32(w) * a))), max(1, round_half_away(float(np.float32(w) * b))) + 1))
    else:
        rows.update(h for h, _ in train.sizes)
        cols.update(w for _, w in train.sizes)
    for i in check_positions:
        rows.add(train.sizes[i][0])
        cols.add(train.sizes[i][1])
    if val is not None:
        rows.update(h for h, _ in val.sizes)
        cols.update(w for _, w in val.sizes)
    return rows, cols


def check_placements(cfg, rows, cols):
    placement = cfg["placement"]
    missing = [f"heights {sorted(set(rows) - set(placement['rows']))}" if set(rows) - set(placement["rows"]) else "",
               f"widths {sorted(set(cols) - set(placement['cols']))}" if set(cols) - set(placement["cols"]) else ""]
    missing = [m for m in missing if m]
    if missing:
        raise Fail("the settings' placement table has no entry for image " + " and ".join(missing)
                   + " (SegKit's size rule: export again with this data)")


# ---------------------------------------------------------------------------
# The tf.data pipeline


class Pipeline:
    """Builds batches as SegKit's TrainingBatches.assemble + Trainer.alignedLabels
    would: decode, (augment), input scaling, pixel weights, placement."""

    def __init__(self, cfg, channels):
        self.cfg, self.channels = cfg, channels
        self.classes = cfg["classes"]
        self.ignore = cfg["ignore_label"] if cfg.get("ignore_label") is not None else -1
        self.scale = parse_input_scale(cfg["input_scale"])
        bw = cfg.get("border_weight")
        self.border = None
        if bw is not None:
            try:
                import scipy.ndimage  # noqa: F401
            except ImportError:
                raise Fail("border_weight needs scipy (pip install scipy)")
            cw = cfg.get("class_weights") or [1.0] * self.classes
            background = cfg["background_class"] if cfg.get("background_class") is not None else self.classes - 1
            self.border = (np.asarray(cw, np.float32), int(background), float(bw["w0"]), float(bw["sigma"]))
        self.tables = {}
        if not cfg["placement"]["rows"] or not cfg["placement"]["cols"]:
            raise Fail("the settings' placement table is empty")
        for axis in ("rows", "cols"):
            entries = cfg["placement"][axis]
            table = np.full((max(entries, default=0) + 2, 4), -1, np.int32)
            for length, entry in entries.items():
                table[length] = entry
            self.tables[axis] = tf.constant(table)
        r = min(entries_of(cfg, "rows"), key=lambda e: e[0])
        c = min(entries_of(cfg, "cols"), key=lambda e: e[0])
        # The shapes of an empty per-replica batch (a short global batch split over more replicas).
        self.empty = (r[1][0] + r[0] + r[1][1], c[1][0] + c[0] + c[1][1], r[1][3], c[1][3])

    # -- per sample ----------------------------------------------------------

    def input_scaling(self, x, byte_valued):
        if not byte_valued:
            return x
        kind, m, s = self.scale
        if kind == "unit":
            return x / 255.0
        if kind == "symmetric":
            return x / 127.5 - 1.0
        if kind == "mean-std":
            return (x / 255.0 - m) / s
        return x

    def border_weights(self, mask):
        cw, background, w0, sigma = self.border
        ignore = self.ignore

        def weights(m):
            from scipy import ndimage
            # Objects: neither background nor ignored (void pixels and crop padding are no objects).
            labels, n = ndimage.label((m != background) & (m != ignore))
            d1 = np.full(m.shape, np.inf)
            d2 = np.full(m.shape, np.inf)
            for k in range(1, n + 1):
                d = ndimage.distance_transform_edt(labels != k)
                d2 = np.where(d < d1, d1, np.minimum(d2, d))
                d1 = np.minimum(d1, d)
            inside = (m >= 0) & (m < len(cw))
            wc = np.where(inside, cw[np.clip(m, 0, len(cw) - 1)], np.float32(1)).astype(np.float64)
            s = d1 + d2
            extra = np.where((m == background) & np.isfinite(d2), w0 * np.exp(-(s * s) / (2 * sigma * sigma)), 0.0)
            return (wc + extra).astype(np.float32)
        w = tf.numpy_function(weights, [mask], tf.float32, stateful=False)
        w.set_shape([None, None])
        return w

    def transform(self, x, m, seed):
        """SegKit's TrainingBatches.transform: rescale, crop, then flip/shift/elastic."""
        cfg = self.cfg
        seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(8)]
        if cfg.get("scale_range") is not None:
            a, b = (float(v) for v in cfg["scale_range"])
            f = a + (b - a) * tf.random.stateless_uniform([], seeds[0])
            hw = tf.cast(tf.shape(m), tf.float32)
            new = tf.maximum(1, tf.cast(tf.floor(hw * f + 0.5), tf.int32))
            x, m = tf.cond(tf.reduce_all(tf.equal(new, tf.shape(m))), lambda: (x, m), lambda: rescale(x, m, new[0], new[1]))
        if cfg.get("crop") is not None:
            ch, cw = (int(v) for v in cfg["crop"])
            x, m = crop_axis(x, m, 0, ch, seeds[1], self.ignore)
            x, m = crop_axis(x, m, 1, cw, seeds[2], self.ignore)
        if cfg["augment"]:
            x, m = augment(x, m, set(cfg["augment"]), seeds[3:6])
        return x, m

    # -- batches -------------------------------------------------------------

    def place(self, x, labels, weights):
        """Mirror-pads images to the size the graph runs at; lays masks and weights on its output grid."""
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        pr = tf.gather(self.tables["rows"], tf.minimum(h, tf.shape(self.tables["rows"])[0] - 1))
        pc = tf.gather(self.tables["cols"], tf.minimum(w, tf.shape(self.tables["cols"])[0] - 1))
        with tf.control_dependencies([tf.debugging.Assert(tf.logical_and(pr[3] >= 0, pc[3] >= 0),
                                                          ["no placement for an image of", h, "x", w, "pixels"])]):
            rows = mirror_index(tf.range(-pr[0], h + pr[1]), h)
        cols = mirror_index(tf.range(-pc[0], w + pc[1]), w)
        x = tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)
        pads = [[0, 0], [pr[2], pr[3] - pr[2] - h], [pc[2], pc[3] - pc[2] - w]]
        labels = tf.pad(labels, pads, constant_values=self.ignore)
        weights = tf.pad(weights, pads, constant_values=0.0)
        return x, labels, weights

    def chunks(self, data, elements, augment, weighted=True):
        """A tf.data.Dataset of (images, labels, pixel weights) batches from plan
        elements (indices padded with -1, count, epoch, step, first position);
        `augment`: SegKit's training transforms; `weighted`: border weights (the
        validation loss has none)."""
        decode = data.tf_decoder(self.ignore)
        byte_valued, channels = data.byte_valued, self.channels
        weighted = weighted and self.border is not None
        seed = int(self.cfg["seed"]) % (1 << 31)

        def sample(index, epoch, step, position):
            x, m = decode(index)
            if augment:
                s = tf.stack([tf.constant(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64),
                              tf.cast(step, tf.int64) * 65_537 + tf.cast(position, tf.int64)])
                x, m = self.transform(x, m, s)
            x = self.input_scaling(x, byte_valued)
            w = self.border_weights(m) if weighted else tf.ones(tf.shape(m), tf.float32)
            return x, m, w

        spec = (tf.TensorSpec([None, None, channels], tf.float32), tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None, None], tf.float32))
        eh, ew, oh, ow = self.empty

        def load(indices, n, epoch, step, first):
            def full():
                xs, ms, ws = tf.map_fn(lambda k: sample(indices[k], epoch, step, first + k), tf.range(n), fn_output_signature=spec)
                return self.place(xs, ms, ws)

            def empty():
                return (tf.zeros([0, eh, ew, channels]), tf.zeros([0, oh, ow], tf.int32), tf.zeros([0, oh, ow]))
            return tf.cond(n > 0, full, empty)

        ds = tf.data.Dataset.from_tensor_slices(elements)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def entries_of(cfg, axis):
    return list(cfg["placement"][axis].items())


def plan_elements(plans, replicas, worker, workers):
    """The per-replica parts of each planned global batch that this worker's
    replicas take, in replica order: replica r of a batch of n takes positions
    r*n//R ... (r+1)*n//R - 1. Returns numpy arrays for from_tensor_slices."""
    local = replicas // workers
    width = max(1, max((-(-len(b) // replicas) for _, _, b in plans), default=1))
    idx, count, epochs, steps, firsts = [], [], [], [], []
    for epoch, step, batch in plans:
        n = len(batch)
        for r in range(worker * local, (worker + 1) * local):
            part = batch[r * n // replicas:(r + 1) * n // replicas]
            idx.append(part + [-1] * (width - len(part)))
            count.append(len(part))
            epochs.append(epoch)
            steps.append(step)
            firsts.append(r * n // replicas)
    as32 = lambda v: np.asarray(v, np.int32)  # noqa: E731
    return (as32(idx).reshape(-1, width), as32(count), as32(epochs), as32(steps), as32(firsts))


def mirror_index(i, n):
    """SegKit's mirrorIndex: reflection without repeating the edge, folding for any distance."""
    period = tf.maximum(2 * (n - 1), 1)
    m = tf.math.floormod(i, period)
    return tf.where(n > 1, tf.where(m < n, m, period - m), tf.zeros_like(i))


def round_away(v):
    """Swift's .rounded(): half away from zero (tf.round rounds half to even)."""
    return tf.sign(v) * tf.floor(tf.abs(v) + 0.5)


def rescale(x, m, h, w):
    """SegKit's TrainingBatches.rescale: bilinear image (half-pixel centres), nearest-neighbour mask."""
    sh, sw = tf.shape(m)[0], tf.shape(m)[1]
    sy = tf.cast(sh, tf.float32) / tf.cast(h, tf.float32)
    sx = tf.cast(sw, tf.float32) / tf.cast(w, tf.float32)

    def axis(n, size, scale):
        p = tf.range(n, dtype=tf.float32)
        f = tf.maximum(0.0, (p + 0.5) * scale - 0.5)
        i0 = tf.minimum(tf.cast(f, tf.int32), size - 1)
        i1 = tf.minimum(i0 + 1, size - 1)
        near = tf.minimum(tf.cast((p + 0.5) * scale, tf.int32), size - 1)
        return i0, i1, f - tf.cast(i0, tf.float32), near
    y0, y1, ty, my = axis(h, sh, sy)
    x0, x1, tx, mx = axis(w, sw, sx)
    r0, r1 = tf.gather(x, y0, axis=0), tf.gather(x, y1, axis=0)
    a, b = tf.gather(r0, x0, axis=1), tf.gather(r0, x1, axis=1)
    d, e = tf.gather(r1, x0, axis=1), tf.gather(r1, x1, axis=1)
    ty, tx = ty[:, None, None], tx[None, :, None]
    out = (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * d + tx * e)
    return out, tf.gather(tf.gather(m, my, axis=0), mx, axis=1)


def crop_axis(x, m, axis, target, seed, ignore):
    """SegKit's randomCrop along one axis: a uniformly placed window, or the
    image padded at a random place (pixels 0, mask the ignore label)."""
    size = tf.shape(m)[axis]

    def window():
        o = tf.random.stateless_uniform([], seed, 0, tf.maximum(size - target, 0) + 1, tf.int32)
        if axis == 0:
            return x[o:o + target], m[o:o + target]
        return x[:, o:o + target], m[:, o:o + target]

    def padded():
        p = tf.random.stateless_uniform([], seed, 0, tf.maximum(target - size, 0) + 1, tf.int32)
        pads = [[p, target - size - p], [0, 0]] if axis == 0 else [[0, 0], [p, target - size - p]]
        return tf.pad(x, pads + [[0, 0]]), tf.pad(m, pads, constant_values=ignore)
    x, m = tf.cond(size >= target, window, padded)
    return x, m


def augment(x, m, kinds, seeds):
    """SegKit's Augmentation.apply: flips (p = 1/2 each), a shift by up to an
    eighth of the size (mirrored borders), U-Net's elastic deformation (3x3 grid
    of N(0, 10 px) displacements, bilinear over the image); image bilinear, mask nearest."""
    h, w = tf.shape(m)[0], tf.shape(m)[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    yy = tf.range(hf)[:, None] + tf.zeros([1, w])
    xx = tf.range(wf)[None, :] + tf.zeros([h, 1])
    sy, sx = yy, xx
    if "flip" in kinds:
        u = tf.random.stateless_uniform([2], seeds[0])
        sy = tf.where(u[0] < 0.5, hf - 1 - yy, yy)
        sx = tf.where(u[1] < 0.5, wf - 1 - xx, xx)
    if "shift" in kinds:
        dy = tf.random.stateless_uniform([], seeds[1], -(h // 8), h // 8 + 1, tf.int32)
        dx = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seeds[1], 1), -(w // 8), w // 8 + 1, tf.int32)
        sy = sy - tf.cast(dy, tf.float32)
        sx = sx - tf.cast(dx, tf.float32)
    if "elastic" in kinds:
        grid = tf.random.stateless_normal([18], seeds[2]) * 10.0
        gy = yy / tf.cast(tf.maximum(h - 1, 1), tf.float32) * 2
        gx = xx / tf.cast(tf.maximum(w - 1, 1), tf.float32) * 2
        y0 = tf.minimum(tf.cast(gy, tf.int32), 1)
        x0 = tf.minimum(tf.cast(gx, tf.int32), 1)
        fy, fx = gy - tf.cast(y0, tf.float32), gx - tf.cast(x0, tf.float32)
        for k in (0, 9):
            v = lambda dy_, dx_: tf.gather(grid, k + (y0 + dy_) * 3 + x0 + dx_)  # noqa: E731
            d = (1 - fy) * ((1 - fx) * v(0, 0) + fx * v(0, 1)) + fy * ((1 - fx) * v(1, 0) + fx * v(1, 1))
            if k == 0:
                sy = sy + d
            else:
                sx = sx + d
    ry, rx = tf.cast(round_away(sy), tf.int32), tf.cast(round_away(sx), tf.int32)
    mask = tf.gather_nd(m, tf.stack([mirror_index(ry, h), mirror_index(rx, w)], -1))
    fy0, fx0 = tf.floor(sy), tf.floor(sx)
    ty, tx = (sy - fy0)[..., None], (sx - fx0)[..., None]
    y0, x0 = tf.cast(fy0, tf.int32), tf.cast(fx0, tf.int32)
    r0, r1 = mirror_index(y0, h), mirror_index(y0 + 1, h)
    c0, c1 = mirror_index(x0, w), mirror_index(x0 + 1, w)
    at = lambda r, c: tf.gather_nd(x, tf.stack([r, c], -1))  # noqa: E731
    out = (1 - ty) * ((1 - tx) * at(r0, c0) + tx * at(r0, c1)) + ty * ((1 - tx) * at(r1, c0) + tx * at(r1, c1))
    return out, mask


# ---------------------------------------------------------------------------
# Loss and metrics (SegKit's Losses.swift, SoftmaxCrossEntropy.swift, Metrics.swift)


class Loss:
    """SegKit's training loss on logits (N, H, W, K) and output-grid labels and pixel weights.

    Cross-entropy: sum over counted pixels (label != ignore) of
    pixel_weight x class_weight[label] x (-log softmax) divided by the NUMBER of
    counted pixels (not by the sum of the weights). Class weights act in the
    cross-entropy of weighted-ce and ce+dice; with border weights the border
    map (the class weights folded in, as U-Net's w_c(x)) replaces them in
    every cross-entropy. Soft Dice: 1 -
    mean over classes of (2I+1)/(P+Y+1) over the batch's counted pixels.
    Across replicas the counts and Dice sums are all-reduced, so the loss is
    the global batch's and the summed gradients are its gradient."""

    def __init__(self, cfg, validation=False):
        self.classes = cfg["classes"]
        self.ignore = cfg["ignore_label"] if cfg.get("ignore_label") is not None else -1
        kind = "ce" if validation else cfg["loss"]
        self.ce = kind in ("ce", "weighted-ce", "ce+dice")
        self.dice = kind in ("dice", "ce+dice")
        cw = cfg.get("class_weights")
        # With U-Net's border map the class weights are in the map (w_c(x)); the loss does not apply them again.
        self.class_weights = cw if (kind in ("weighted-ce", "ce+dice") and cw is not None and not cfg.get("border_weight")) else None
        self.pixel_weights = not validation

    def terms(self, logits, labels, weights):
        """Per-replica sums (differentiable), in float64."""
        dtype = logits.dtype
        valid = tf.not_equal(labels, self.ignore)
        lab = tf.where(valid, labels, 0)
        vf = tf.cast(valid, dtype)
        out = {"count": wide_sum(vf)}
        if self.ce:
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=logits)
            wgt = vf * tf.cast(weights, dtype) if self.pixel_weights else vf
            if self.class_weights is not None:
                wgt = wgt * tf.gather(tf.constant(self.class_weights, dtype), lab)
            out["ce"] = wide_sum(wgt * nll)
        if self.dice:
            p = tf.nn.softmax(logits)
            onehot = tf.one_hot(lab, self.classes, dtype=dtype) * vf[..., None]
            out["inter"] = wide_sum(p * onehot)
            out["psum"] = wide_sum(p * vf[..., None])
            out["ysum"] = wide_sum(onehot)
        return out

    def combine(self, local, total):
        """(surrogate, value): `value` is the loss of the whole batch (`total`
        holds the all-reduced sums); the surrogates' gradients, summed over the
        replicas, are the gradient of `value`."""
        n = total["count"]
        safe = tf.maximum(n, 1)
        surrogate = value = tf.zeros([], n.dtype)
        if self.ce:
            surrogate += local["ce"] / safe
            value += total["ce"] / safe
        if self.dice:
            def dice(i, p, y):
                return 1 - tf.reduce_mean((2 * i + 1) / (p + y + 1))
            mixed = [total[k] + local[k] - tf.stop_gradient(local[k]) for k in ("inter", "psum", "ysum")]
            surrogate += dice(*mixed)
            value += dice(total["inter"], total["psum"], total["ysum"])
        return surrogate, value

    def batch(self, logits, labels, weights):
        """The loss of a batch on this replica, all-reduced over the replicas."""
        local = self.terms(logits, labels, weights)
        ctx = tf.distribute.get_replica_context()
        frozen = {k: tf.stop_gradient(v) for k, v in local.items()}
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, frozen) if ctx is not None else frozen
        return self.combine(local, total)


def wide_sum(v):
    """Sum of v (N, H, W[, K]) over N, H, W in float64: along rows in v's type, then
    in float64 (TensorFlow's float32 sum of a whole batch drifts by ~1e-5; SegKit sums in double)."""
    rows = tf.reduce_sum(v, axis=2)
    return tf.reduce_sum(tf.cast(rows, tf.float64), axis=[0, 1])


def confusion_update(counts, labels, logits, classes, ignore):
    """Adds argmax predictions against labels (ignored pixels skipped) to counts (K x K, rows truth)."""
    valid = tf.not_equal(labels, ignore)
    truth = tf.boolean_mask(labels, valid)
    pred = tf.boolean_mask(tf.argmax(logits, axis=-1, output_type=tf.int32), valid)
    cells = tf.math.unsorted_segment_sum(tf.ones_like(truth, tf.float64), truth * classes + pred, classes * classes)
    counts.assign_add(tf.reshape(cells, [classes, classes]))


def confusion_results(counts):
    """Pixel accuracy and mean IoU as SegKit's ConfusionMatrix (a class in
    neither truth nor prediction has no IoU and is left out of the mean)."""
    tp = tf.linalg.diag_part(counts)
    truth, pred = tf.reduce_sum(counts, 1), tf.reduce_sum(counts, 0)
    total = tf.reduce_sum(counts)
    union = truth + pred - tp
    present = union > 0
    iou = tf.where(present, tp / tf.where(present, union, 1), 0)
    k = tf.reduce_sum(tf.cast(present, tf.float64))
    return {"pixel_accuracy": tf.where(total > 0, tf.reduce_sum(tp) / tf.maximum(total, 1), 0.0),
            "mean_iou": tf.where(k > 0, tf.reduce_sum(iou) / tf.maximum(k, 1), 0.0)}


def build_keras_classes():
    """The Keras pieces (defined once Keras is imported)."""

    class Confusion(keras.metrics.Metric):
        def __init__(self, classes, ignore, name="confusion"):
            super().__init__(name=name, dtype="float64")
            self.classes, self.ignore = classes, ignore
            self.counts = self.add_variable(shape=(classes, classes), initializer="zeros", dtype="float64",
                                            aggregation="sum", name="counts")

        def update_state(self, labels, logits):
            confusion_update(self.counts, labels, logits, self.classes, self.ignore)

        def result(self):
            return confusion_results(tf.convert_to_tensor(self.counts))

        def reset_state(self):
            self.counts.assign(tf.zeros_like(self.counts))

    class SegKitTraining(keras.Model):
        """The segmenter with SegKit's training step (the saved model is `segmenter`)."""

        def __init__(self, segmenter, cfg):
            super().__init__(name="segkit_training")
            self.segmenter = segmenter
            self.train_loss = Loss(cfg)
            self.val_loss = Loss(cfg, validation=True)
            ignore = self.train_loss.ignore
            self.loss_tracker = keras.metrics.Mean(name="loss", dtype="float64")
            self.confusion = Confusion(cfg["classes"], ignore)
            # Keras 3 reduces a multi-worker step's outputs with MEAN along axis 0,
            # which fails for scalars: give them a length-1 axis there.
            self.vector_logs = isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)

        def call(self, x, training=False):
            return self.segmenter(x, training=training)

        @property
        def metrics(self):
            return [self.loss_tracker, self.confusion]

        def step_logs(self):
            logs = self.get_metrics_result()
            return {k: tf.reshape(v, [1]) for k, v in logs.items()} if self.vector_logs else logs

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            # Keras (3.x, TensorFlow back end) builds a model before fit/evaluate by
            # averaging the first batch over the replicas, which fails when the
            # replicas' parts of a batch differ in size (a batch of 5 on 2 replicas).
            # Everything is built before fit here (model, optimizer, metrics).
            return

        def train_step(self, data):
            x, labels, weights = data
            with tf.GradientTape() as tape:
                logits = self.segmenter(x, training=True)
                surrogate, value = self.train_loss.batch(logits, labels, weights)
            variables = self.trainable_variables
            grads = tape.gradient(surrogate, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            self.loss_tracker.update_state(value)
            self.confusion.update_state(labels, logits)
            return self.step_logs()

        def test_step(self, data):
            x, labels, weights = data
            logits = self.segmenter(x, training=False)
            _, value = self.val_loss.batch(logits, labels, weights)
            self.loss_tracker.update_state(value)
            self.confusion.update_state(labels, logits)
            return self.step_logs()

    return SegKitTraining


# ---------------------------------------------------------------------------
# Model


def load_segmenter(cfg):
    path = resolve(cfg["segmenter"])
    if not os.path.exists(path):
        raise Fail(f"{path}: no such segmenter")
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    layers = {layer.name: layer for layer in all_layers(model)}
    missing = [n for n in cfg["frozen_layers"] if n not in layers]
    if missing:
        raise Fail(f"frozen layer(s) not in {os.path.basename(path)}: {', '.join(missing)}")
    for name in cfg["frozen_layers"]:
        layers[name].trainable = False
    shape = model.inputs[0].shape
    channels = cfg.get("input_channels") or shape[-1]
    if shape[-1] is not None and shape[-1] != channels:
        raise Fail(f"input_channels is {channels}, and the segmenter takes {shape[-1]}")
    return model, int(channels)


def all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def save_segmenter(model, path, cfg):
    """Writes the segmenter (Keras's file, with SegKit's segkit.json from the
    exported file, updated as `segkit train` updates it) atomically."""
    temp = path + ".partial.keras"
    model.save(temp)
    source = resolve(cfg["segmenter"])
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(temp, "a", zipfile.ZIP_DEFLATED) as dst:
        have = set(dst.namelist())
        for name in src.namelist():
            if name in have:
                continue
            data = src.read(name)
            if name == "segkit.json":
                meta = json.loads(data)
                meta["input_scale"] = cfg["input_scale"]
                if cfg.get("class_names") and len(cfg["class_names"]) == cfg["classes"]:
                    meta["class_names"] = cfg["class_names"]
                if cfg.get("background_class") is not None:
                    meta["background_class"] = cfg["background_class"]
                data = json.dumps(meta, sort_keys=True).encode()
            dst.writestr(name, data)
    os.replace(temp, path)


# ---------------------------------------------------------------------------
# --check


def run_check(cfg, args):
    model, channels = load_segmenter(cfg)
    print(f"segmenter {cfg['segmenter']}: {len(model.layers)} layers; frozen: {', '.join(cfg['frozen_layers']) or 'none'} (all present)")
    train, val = open_sets(cfg, channels)
    check = cfg.get("check") or {}
    positions = check.get("train_positions")
    if positions is None:
        positions = list(range(min(int(cfg["batch"]), len(train))))
    if any(p < 0 or p >= len(train) for p in positions):
        raise Fail(f"check.train_positions {positions} are not positions of the {len(train)} training samples")
    if len({train.sizes[p] for p in positions}) != 1:
        raise Fail(f"check.train_positions {positions} are of several sizes")
    rows, cols = needed_lengths(train, val, cfg, positions)
    check_placements(cfg, rows, cols)
    print(f"data: {len(train)} training, {len(val) if val else 0} validation sample(s); {len(set(train.sizes))} training size(s); "
          f"placements cover every size")
    pipeline = Pipeline(cfg, channels)
    elements = plan_elements([(0, 0, list(positions))], 1, 0, 1)
    x, labels, weights = next(iter(pipeline.chunks(train, elements, augment=False)))
    mode = check.get("mode", "inference")
    logits = model(x, training=(mode == "training"))
    if tuple(logits.shape[1:3]) != tuple(labels.shape[1:3]):
        raise Fail(f"the segmenter's output is {tuple(logits.shape[1:3])} for a padded input {tuple(x.shape[1:3])}; "
                   f"the placement says {tuple(labels.shape[1:3])}")
    if logits.shape[-1] != cfg["classes"]:
        raise Fail(f"the segmenter has {logits.shape[-1]} output channels for {cfg['classes']} classes")
    loss = Loss(cfg)
    _, value = loss.combine(*(2 * [loss.terms(tf.cast(logits, tf.float64), labels, weights)]))
    keras_loss = float(value)
    segkit = check.get("loss")
    if segkit is None:
        print(f"first-batch loss: keras={keras_loss:.6f} segkit=n/a (the settings hold no check.loss; not compared)")
        return 0
    diff = abs(keras_loss - float(segkit))
    print(f"first-batch loss: keras={keras_loss:.6f} segkit={float(segkit):.6f} |diff|={diff:.2e}")
    if diff > CHECK_TOLERANCE:
        print(f"FAIL: the losses differ by more than {CHECK_TOLERANCE:g}", file=sys.stderr)
        return 1
    print("OK")
    return 0


# ---------------------------------------------------------------------------
# Training


def make_strategy(args):
    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        task_type, task_id = resolver.task_type, resolver.task_id
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        chief = task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
        workers = len(resolver.cluster_spec().as_dict().get("worker", [])) + (1 if has_chief else 0)
        return strategy, chief, workers, f"MultiWorkerMirroredStrategy ({task_type} {task_id} of {workers} worker(s))"
    if args.cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_replicas)
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices), True, 1, f"MirroredStrategy ({args.cpu_replicas} CPU replicas)"
    strategy = tf.distribute.MirroredStrategy()
    return strategy, True, 1, "MirroredStrategy (" + ", ".join(strategy.extended.worker_devices) + ")"


def build_callbacks(cfg, trainer, epochs, lr_scale, out, chief, has_val, verbose):
    class SegKitEpochs(keras.callbacks.Callback):
        """SegKit's end of epoch: history line, best model on a better score
        (val mIoU, else minus the training loss), patience."""

        def __init__(self):
            super().__init__()
            self.best, self.waiting, self.records = -math.inf, 0, []

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.validating = time.time(), None

        def on_test_begin(self, logs=None):
            if self.validating is None:
                self.validating = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = (self.validating or time.time()) - self.started
            loss = float(logs["loss"])
            record = [str(epoch + 1), f"{np.float32(loss):.6f}"]
            if has_val:
                record += [f"{np.float32(logs['val_loss']):.6f}", f"{float(logs['val_pixel_accuracy']):.6f}", f"{float(logs['val_mean_iou']):.6f}"]
                score = float(logs["val_mean_iou"])
            else:
                record += ["", "", ""]
                score = -float(np.float32(loss))
            record += [swift_float(learning_rate(cfg, epoch, epochs) * np.float32(lr_scale)), f"{seconds:.2f}"]
            self.records.append(",".join(record))
            improved = score > self.best
            if improved:
                self.best, self.waiting, self.best_epoch = score, 0, epoch + 1
                # Every worker saves (saving may read synchronised variables); only the chief keeps it.
                target = os.path.join(out, "best.keras") if chief else os.path.join(tempfile.mkdtemp(), "best.keras")
                save_segmenter(trainer.segmenter, target, cfg)
                if not chief:
                    shutil.rmtree(os.path.dirname(target), ignore_errors=True)
            else:
                self.waiting += 1
            if chief:
                with open(os.path.join(out, "history.csv.partial"), "w") as f:
                    f.write("\n".join([HISTORY_HEADER] + self.records) + "\n")
                os.replace(os.path.join(out, "history.csv.partial"), os.path.join(out, "history.csv"))
            if verbose:
                print(f"epoch {epoch + 1}: {'improved: best.keras written' if improved else 'no improvement'}"
                      + (f" ({self.waiting}/{cfg['patience']})" if cfg.get("patience") and not improved else ""), flush=True)
            if cfg.get("patience") and self.waiting >= int(cfg["patience"]):
                self.model.stop_training = True

    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: float(learning_rate(cfg, epoch, epochs) * np.float32(lr_scale)))
    return [schedule, SegKitEpochs()]


def run_training(cfg, args):
    strategy, chief, workers, description = make_strategy(args)
    replicas = strategy.num_replicas_in_sync
    epochs = int(args.epochs or cfg["epochs"])
    batch = int(cfg["batch"])
    global_batch = batch * replicas if args.batch_per_replica else batch
    lr_scale = global_batch / batch if args.scale_lr else 1.0
    out = os.path.abspath(args.out or os.path.join(HERE, "trained"))
    if chief:
        os.makedirs(out, exist_ok=True)

    with strategy.scope():
        segmenter, channels = load_segmenter(cfg)
        if replicas > 1:
            for layer in all_layers(segmenter):
                if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
                    layer.synchronized = True
    train, val = open_sets(cfg, channels)
    rows, cols = needed_lengths(train, val, cfg, [])
    check_placements(cfg, rows, cols)
    pipeline = Pipeline(cfg, channels)

    plans, steps = [], None
    for epoch in range(epochs):
        plan = train_plan(train.sizes, cfg, epoch, global_batch)
        steps = len(plan)
        plans += [(epoch, step, b) for step, b in enumerate(plan)]
    val_plan = inference_plan(val.sizes, batch) if val is not None else []

    def train_fn(context):
        elements = plan_elements(plans, replicas, context.input_pipeline_id, context.num_input_pipelines)
        return pipeline.chunks(train, elements, augment=True).repeat()

    def val_fn(context):
        elements = plan_elements([(0, s, b) for s, b in enumerate(val_plan)], replicas, context.input_pipeline_id,
                                 context.num_input_pipelines)
        return pipeline.chunks(val, elements, augment=False, weighted=False).repeat()

    train_data = strategy.distribute_datasets_from_function(train_fn)
    val_data = strategy.distribute_datasets_from_function(val_fn) if val is not None else None

    Training = build_keras_classes()
    with strategy.scope():
        trainer = Training(segmenter, cfg)
        lr = float(learning_rate(cfg, 0, epochs) * np.float32(lr_scale))
        wd = float(cfg["weight_decay"]) or None
        if cfg["optimizer"] == "adam":
            optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=wd)
        else:
            optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=float(cfg["momentum"]), nesterov=False, weight_decay=wd)
        trainer.compile(optimizer=optimizer, jit_compile=False)
        eh, ew, _, _ = pipeline.empty
        trainer(tf.zeros([1, eh, ew, channels]))
        optimizer.build(trainer.trainable_variables)

    verbose = args.verbose if chief else 0
    if chief:
        trainable = sum(int(np.prod(v.shape)) for v in segmenter.trainable_variables)
        print(f"Training {cfg['segmenter']} ({trainable:,} trainable parameters) on {len(train)} sample(s), validating on "
              f"{len(val) if val else 0}; {description}: {replicas} replica(s), global batch {global_batch}, "
              f"{steps} step(s) per epoch, up to {epochs} epoch(s); lr {swift_float(lr)} ({cfg['optimizer']}, {cfg['schedule']}); "
              f"loss {cfg['loss']}; out {out}", flush=True)
        if cfg.get("scale_range") is not None and cfg.get("crop") is None and replicas > 1:
            print("note: rescaled whole images train one per batch (as SegKit); the other replicas idle (give crop to batch them)")
    callbacks = build_callbacks(cfg, trainer, epochs, lr_scale, out, chief, val is not None, verbose)
    trainer.fit(train_data, epochs=epochs, steps_per_epoch=steps, validation_data=val_data, shuffle=False,
                validation_steps=len(val_plan) if val is not None else None, callbacks=callbacks, verbose=verbose)
    if chief:
        settings = dict(cfg, epochs=epochs, placement=None, train_files=None, val_files=None, train_indices=None, val_indices=None)
        settings["keras_run"] = {"strategy": description, "replicas": replicas, "global_batch": global_batch,
                                 "lr_scale": lr_scale, "epochs_run": len(callbacks[1].records),
                                 "best_epoch": getattr(callbacks[1], "best_epoch", None)}
        with open(os.path.join(out, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        best = callbacks[1].best
        what = f"best val mIoU {best:.4f}" if val is not None else f"lowest training loss {-best:.4f}"
        print(f"{what} (epoch {getattr(callbacks[1], 'best_epoch', '?')}) -> {os.path.join(out, 'best.keras')}; "
              f"history {os.path.join(out, 'history.csv')}", flush=True)
    return 0


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the top of this file for the details.")
    parser.add_argument("--check", action="store_true", help="no training: check the settings, data and model, and compare the first batch's loss with SegKit's")
    parser.add_argument("--config", help="settings JSON to use instead of the CONFIG line (for testing)")
    parser.add_argument("--epochs", type=int, help="the number of epochs (default: the exported run's)")
    parser.add_argument("--out", help="output folder (default: trained/ beside this script)")
    parser.add_argument("--batch-per-replica", action="store_true", help="each replica takes `batch` samples (global batch = batch x replicas); changes the run")
    parser.add_argument("--scale-lr", action="store_true", help="multiply the learning rate by global batch / batch (linear scaling rule)")
    parser.add_argument("--cpu-replicas", type=int, default=1, help="split the CPU into N replicas (without TF_CONFIG)")
    parser.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2), help="Keras progress output (default: 1 on a terminal, else 2)")
    args = parser.parse_args(argv)
    if args.verbose is None:
        args.verbose = 1 if sys.stdout.isatty() else 2
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    global np, tf, keras
    try:
        cfg = load_config(args.config)
        import numpy as np
        import tensorflow as tf
        import keras
        if keras.config.backend() != "tensorflow":
            raise Fail(f"Keras's back end is {keras.config.backend()}; this script needs KERAS_BACKEND=tensorflow")
        if int(keras.__version__.split(".")[0]) < 3:
            raise Fail(f"Keras {keras.__version__}: this script needs Keras 3 (TensorFlow 2.16 or later)")
        return run_check(cfg, args) if args.check else run_training(cfg, args)
    except Fail as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
