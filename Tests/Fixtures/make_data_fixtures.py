#!/usr/bin/env python3
"""Writes the small image / dataset fixtures SegKit's data-loading tests read.

Run once by a developer from the repository root (outputs are committed under
Tests/Fixtures/data/):

  ../venvs/k3/bin/python Tests/Fixtures/make_data_fixtures.py

Needs Pillow (11+) and numpy. Everything is deterministic (fixed numpy seeds), and
every JPEG is written by Pillow's own encoder (PIL.Image.save). The script deletes
and recreates only the subfolders of Tests/Fixtures/data/ listed below.

data/jpeg/             JPEG decoder tests. NAME.expected.png is Pillow's reference
                       decode (Image.open -> ImageOps.exif_transpose -> PNG, mode L/RGB).
    baseline_rgb.jpg       37x23 RGB, gradients + noise, q90, baseline, 4:2:0
    baseline_444.jpg       same pixels, q95, 4:4:4 (subsampling=0)
    progressive_rgb.jpg    41x29 RGB, progressive, q90
    grey.jpg               30x20 mode L, q90
    orient_N.jpg (N=2..8)  the same stored 20x12 RGB image (bright block top-left +
                           gradient), q95, EXIF Orientation N; expected.png is the
                           transposed display image (12x20 for N=5..8)
    cmyk.jpg               16x16 CMYK JPEG (no expected png; decoder may refuse it)
    truncated.jpg          first 60% of the bytes of a 64x48 baseline RGB JPEG
    not_a_jpeg.jpg         a few bytes of text
data/voc/VOC2012/      tiny Pascal VOC 2012 tree as VOC ships it: JPEGImages/*.jpg,
                       SegmentationClass/*.png (mode P, VOC devkit colour map, values
                       0 background, 1/7/15 objects, 255 = 1-px void band on each
                       object's boundary), ImageSets/Segmentation/{train,val,trainval}.txt
                       (6 train + 2 val, all sizes different), plus one JPEG not listed
                       in any ImageSets file.
data/pets/             tiny Oxford-IIIT Pet tree: images/*.jpg, annotations/trimaps/*.png
                       (mode L, 1 = pet, 2 = background, 3 = border), annotations/
                       trainval.txt (4) and test.txt (2), lines `NAME CLASS-ID SPECIES
                       BREED-ID`, no header. beagle_2 is a grey (mode L) JPEG; Bengal_3
                       carries EXIF Orientation 6 and its trimap has the display size.
data/colour_masks/     images/*.png (RGB) + masks/*.png (RGB colour-coded classes) +
                       colors.txt (`R,G,B name`); 4 pairs of 32x40.
data/mixed/            images/*.png (RGB) + masks/*.png (mode L, 0 red-ish blob,
                       1 blue-ish blob, 2 background); sizes 48x76, 32x32, 52x92,
                       36x20, 64x48.
data/odd/              same layout as mixed, five 45x75 pairs.
data/jpeg_folder/      images/*.jpg (RGB) + masks/*.png (mode L, ids 0..2), 4 pairs of 40x40.
data/jpeg_mask_folder/ images/a.png + masks/a.jpg: a JPEG mask, which SegKit must refuse.
data/low_bit/          grey PNGs of 1, 2 and 4 bits per sample (Pillow: mode "1", and mode L
                       saved with bits=2 / bits=4), 24x16 gradients; NAME.expected.png is
                       Pillow's decode of each as 8-bit mode L (the samples scaled to 0..255).

Sizes are written width x height throughout.
"""
import os
import shutil

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SUBDIRS = ["jpeg", "voc", "pets", "colour_masks", "mixed", "odd",
           "jpeg_folder", "jpeg_mask_folder", "low_bit"]


def mkdir(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(p, exist_ok=True)
    return p


def u8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def grid(w, h):
    """Pixel-centre coordinates: ys (h, w), xs (h, w)."""
    return np.mgrid[0:h, 0:w].astype(np.float64)


def ellipse(w, h, cx, cy, rx, ry):
    ys, xs = grid(w, h)
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def rect(w, h, x0, y0, x1, y1):
    ys, xs = grid(w, h)
    return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)


def dilate(m, r=1):
    """4-neighbour dilation, r steps (no wrap-around)."""
    out = m.copy()
    for _ in range(r):
        d = out.copy()
        d[1:, :] |= out[:-1, :]
        d[:-1, :] |= out[1:, :]
        d[:, 1:] |= out[:, :-1]
        d[:, :-1] |= out[:, 1:]
        out = d
    return out


def erode(m, r=1):
    return ~dilate(~m, r)


def inner_boundary(m):
    """Pixels of m with a 4-neighbour outside m (image edges do not count)."""
    nb = np.zeros_like(m)
    nb[1:, :] |= ~m[:-1, :]
    nb[:-1, :] |= ~m[1:, :]
    nb[:, 1:] |= ~m[:, :-1]
    nb[:, :-1] |= ~m[:, 1:]
    return m & nb


def texture(rng, w, h, base, amp=18.0):
    """Smooth gradient background in colour `base` with per-pixel noise."""
    ys, xs = grid(w, h)
    g = 25.0 * np.sin(xs / 5.0 + ys / 9.0)[..., None]
    return np.asarray(base, np.float64) + g + rng.normal(0, amp, (h, w, 3))


def paint(img, mask, colour, rng, amp=12.0):
    n = int(mask.sum())
    img[mask] = np.asarray(colour, np.float64) + rng.normal(0, amp, (n, 3))


def save_jpeg(im, path, **kw):
    im.save(path, format="JPEG", **kw)


def save_expected(jpg_path):
    im = ImageOps.exif_transpose(Image.open(jpg_path))
    assert im.mode in ("L", "RGB"), im.mode
    # Re-wrap the pixels so no metadata (EXIF etc.) goes into the PNG.
    clean = Image.frombytes(im.mode, im.size, im.tobytes())
    clean.save(jpg_path[:-4] + ".expected.png", format="PNG")


# ----------------------------------------------------------------------------- jpeg
def make_jpeg():
    d = mkdir("jpeg")
    rng = np.random.RandomState(1001)

    def smooth_rgb(w, h):
        ys, xs = grid(w, h)
        r = 255.0 * xs / max(w - 1, 1)
        g = 255.0 * ys / max(h - 1, 1)
        b = 128.0 + 100.0 * np.sin(xs / 4.0) * np.cos(ys / 3.0)
        a = np.stack([r, g, b], -1) + rng.normal(0, 10, (h, w, 3))
        return Image.fromarray(u8(a), "RGB")

    im = smooth_rgb(37, 23)
    p = os.path.join(d, "baseline_rgb.jpg")
    save_jpeg(im, p, quality=90, progressive=False)
    save_expected(p)
    p = os.path.join(d, "baseline_444.jpg")
    save_jpeg(im, p, quality=95, subsampling=0)
    save_expected(p)

    p = os.path.join(d, "progressive_rgb.jpg")
    save_jpeg(smooth_rgb(41, 29), p, quality=90, progressive=True)
    save_expected(p)

    ys, xs = grid(30, 20)
    grey = 40 + 6 * xs + 3 * ys + rng.normal(0, 8, (20, 30))
    p = os.path.join(d, "grey.jpg")
    save_jpeg(Image.fromarray(u8(grey), "L"), p, quality=90)
    save_expected(p)

    # Orientation: one asymmetric 20x12 image, tags 2..8.
    w, h = 20, 12
    ys, xs = grid(w, h)
    a = np.stack([40 + 8 * xs, 30 + 12 * ys, np.full((h, w), 60.0)], -1)
    a[0:4, 0:6] = (255, 255, 255)          # bright block, top-left
    a[h - 3:h, w - 3:w] = (255, 0, 0)       # small red block, bottom-right
    orient = Image.fromarray(u8(a), "RGB")
    for n in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = n
        p = os.path.join(d, "orient_%d.jpg" % n)
        orient.save(p, format="JPEG", quality=95, exif=exif.tobytes())
        save_expected(p)

    cm = rng.randint(0, 256, (16, 16, 4)).astype(np.uint8)
    cm[:8, :, 0] = 200
    save_jpeg(Image.fromarray(cm, "CMYK"), os.path.join(d, "cmyk.jpg"), quality=90)

    tmp = os.path.join(d, "_full.tmp.jpg")
    save_jpeg(smooth_rgb(64, 48), tmp, quality=90)
    with open(tmp, "rb") as f:
        data = f.read()
    os.remove(tmp)
    with open(os.path.join(d, "truncated.jpg"), "wb") as f:
        f.write(data[: int(len(data) * 0.6)])

    with open(os.path.join(d, "not_a_jpeg.jpg"), "wb") as f:
        f.write(b"this is not a JPEG file\n")


# ----------------------------------------------------------------------------- voc
def voc_colormap(n=256):
    """The VOC devkit's bit-interleaved colour map (VOClabelcolormap.m)."""
    def bit(v, i):
        return (v >> i) & 1
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= bit(c, 0) << (7 - j)
            g |= bit(c, 1) << (7 - j)
            b |= bit(c, 2) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_COLOURS = {1: (220, 40, 40), 7: (40, 60, 220), 15: (230, 210, 40)}


def voc_sample(rng, w, h):
    """Noisy background + 1-2 non-overlapping objects of classes 1/7/15."""
    img = texture(rng, w, h, (90, 120, 90), amp=20.0)
    label = np.zeros((h, w), np.uint8)
    taken = np.zeros((h, w), bool)
    n_obj = rng.randint(1, 3)
    classes = rng.choice([1, 7, 15], size=n_obj, replace=False)
    for cls in classes:
        for _ in range(200):
            rx = rng.uniform(0.12, 0.24) * w
            ry = rng.uniform(0.12, 0.24) * h
            cx = rng.uniform(rx + 1, w - rx - 1)
            cy = rng.uniform(ry + 1, h - ry - 1)
            if rng.rand() < 0.5:
                m = ellipse(w, h, cx, cy, rx, ry)
            else:
                m = rect(w, h, cx - rx, cy - ry, cx + rx, cy + ry)
            # keep a gap so objects never touch: the void band stays 1 px wide
            if m.sum() > 20 and not (dilate(m, 2) & taken).any():
                break
        else:
            raise RuntimeError("could not place object")
        taken |= m
        label[m] = cls
        paint(img, m, VOC_COLOURS[int(cls)], rng)
    for cls in classes:
        label[inner_boundary(label == cls)] = 255
    return Image.fromarray(u8(img), "RGB"), label


def make_voc():
    jdir = mkdir("voc", "VOC2012", "JPEGImages")
    sdir = mkdir("voc", "VOC2012", "SegmentationClass")
    idir = mkdir("voc", "VOC2012", "ImageSets", "Segmentation")
    rng = np.random.RandomState(2012)
    palette = voc_colormap().reshape(-1).tolist()
    items = [("2007_000032", 48, 36), ("2007_000039", 40, 56), ("2007_000063", 52, 44),
             ("2007_000068", 36, 60), ("2007_000121", 64, 40), ("2007_000129", 44, 44),
             ("2007_000170", 56, 48), ("2007_000241", 38, 50)]
    for name, w, h in items:
        img, label = voc_sample(rng, w, h)
        save_jpeg(img, os.path.join(jdir, name + ".jpg"), quality=90)
        m = Image.frombytes("P", (w, h), label.tobytes())
        m.putpalette(palette)
        m.save(os.path.join(sdir, name + ".png"), format="PNG")
    # A JPEG that is in no ImageSets file (VOC has many of these).
    img, _ = voc_sample(rng, 60, 42)
    save_jpeg(img, os.path.join(jdir, "2007_000250.jpg"), quality=90)
    names = [n for n, _, _ in items]
    train, val = names[:6], names[6:]
    for fname, lst in (("train.txt", train), ("val.txt", val), ("trainval.txt", sorted(names))):
        with open(os.path.join(idir, fname), "w") as f:
            f.write("".join(n + "\n" for n in lst))


# ----------------------------------------------------------------------------- pets
def make_pets():
    idir = mkdir("pets", "images")
    tdir = mkdir("pets", "annotations", "trimaps")
    adir = mkdir("pets", "annotations")
    rng = np.random.RandomState(37)
    # name, display w, display h, class id, species (1 cat, 2 dog), breed id, colour,
    # grey?, exif orientation
    items = [
        ("Abyssinian_1", 48, 40, 1, 1, 1, (200, 120, 50), False, None),
        ("american_bulldog_5", 56, 44, 2, 2, 1, (230, 230, 220), False, None),
        ("beagle_2", 40, 52, 5, 2, 4, (180, 130, 60), True, None),
        ("Bengal_3", 44, 60, 6, 1, 2, (210, 160, 40), False, 6),
        ("Birman_4", 64, 50, 7, 1, 3, (240, 235, 210), False, None),
        ("basset_hound_7", 50, 62, 4, 2, 3, (120, 70, 30), False, None),
    ]
    for name, w, h, _, _, _, colour, grey, orient in items:
        img = texture(rng, w, h, (70, 110, 150), amp=22.0)
        pet = ellipse(w, h, rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h,
                      rng.uniform(0.25, 0.33) * w, rng.uniform(0.25, 0.33) * h)
        pet |= ellipse(w, h, w * 0.5, h * 0.3, w * 0.15, h * 0.12)   # a "head"
        paint(img, pet, colour, rng)
        tri = np.full((h, w), 2, np.uint8)
        tri[pet] = 1
        # 2-px border band straddling the pet outline: 1 px inside, 1 px outside.
        band = (dilate(pet, 1) & ~pet) | (pet & ~erode(pet, 1))
        tri[band] = 3
        disp = Image.fromarray(u8(img), "RGB")
        if grey:
            disp = disp.convert("L")
        path = os.path.join(idir, name + ".jpg")
        if orient == 6:
            # Orientation 6: the viewer rotates the stored pixels 90 deg clockwise,
            # so store the display image rotated 90 deg counter-clockwise.
            stored = disp.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6
            stored.save(path, format="JPEG", quality=90, exif=exif.tobytes())
        else:
            save_jpeg(disp, path, quality=90)
        Image.fromarray(tri, "L").save(os.path.join(tdir, name + ".png"), format="PNG")
    lines = ["%s %d %d %d\n" % (n, c, s, b) for n, _, _, c, s, b, _, _, _ in items]
    with open(os.path.join(adir, "trainval.txt"), "w") as f:
        f.write("".join(lines[:4]))
    with open(os.path.join(adir, "test.txt"), "w") as f:
        f.write("".join(lines[4:]))


# ----------------------------------------------------------------------------- folders
def blob_pair(rng, w, h):
    """RGB image + L mask: 0 red-ish blob, 1 blue-ish blob, 2 background."""
    img = texture(rng, w, h, (100, 140, 100), amp=15.0)
    mask = np.full((h, w), 2, np.uint8)
    s = min(w, h)
    for cls, colour in ((0, (210, 50, 50)), (1, (50, 60, 210))):
        cx = rng.uniform(0.25, 0.75) * w
        cy = rng.uniform(0.25, 0.75) * h
        m = ellipse(w, h, cx, cy, rng.uniform(0.12, 0.22) * w + 0.05 * s,
                    rng.uniform(0.12, 0.22) * h + 0.05 * s)
        mask[m] = cls
        paint(img, m, colour, rng)
    return Image.fromarray(u8(img), "RGB"), Image.fromarray(mask, "L")


def make_folder(sub, sizes, seed, image_ext="png"):
    idir = mkdir(sub, "images")
    mdir = mkdir(sub, "masks")
    rng = np.random.RandomState(seed)
    for i, (w, h) in enumerate(sizes):
        name = "img_%02d" % i
        img, mask = blob_pair(rng, w, h)
        if image_ext == "jpg":
            save_jpeg(img, os.path.join(idir, name + ".jpg"), quality=90)
        else:
            img.save(os.path.join(idir, name + ".png"), format="PNG")
        mask.save(os.path.join(mdir, name + ".png"), format="PNG")


COLOUR_CLASSES = [((0, 0, 0), "background"), ((128, 0, 0), "road"), ((0, 128, 0), "tree")]


def make_colour_masks():
    idir = mkdir("colour_masks", "images")
    mdir = mkdir("colour_masks", "masks")
    rng = np.random.RandomState(404)
    w, h = 32, 40
    for i in range(4):
        name = "scene_%d" % i
        img = texture(rng, w, h, (70, 90, 160), amp=12.0)        # background: sky-ish
        label = np.zeros((h, w), np.uint8)
        road_top = int(rng.randint(24, 30))
        road = rect(w, h, 0, road_top, w, h)
        tree = ellipse(w, h, rng.uniform(8, 24), rng.uniform(10, 16),
                       rng.uniform(5, 8), rng.uniform(6, 9)) & ~road
        label[road] = 1
        label[tree] = 2
        paint(img, road, (110, 100, 100), rng)
        paint(img, tree, (40, 150, 50), rng)
        lut = np.array([c for c, _ in COLOUR_CLASSES], np.uint8)
        Image.fromarray(u8(img), "RGB").save(os.path.join(idir, name + ".png"), format="PNG")
        Image.fromarray(lut[label], "RGB").save(os.path.join(mdir, name + ".png"), format="PNG")
    with open(os.path.join(ROOT, "colour_masks", "colors.txt"), "w") as f:
        f.write("".join("%d,%d,%d %s\n" % (c + (n,)) for c, n in
                        [COLOUR_CLASSES[1], COLOUR_CLASSES[2], COLOUR_CLASSES[0]]))


def make_jpeg_mask_folder():
    idir = mkdir("jpeg_mask_folder", "images")
    mdir = mkdir("jpeg_mask_folder", "masks")
    rng = np.random.RandomState(99)
    img, mask = blob_pair(rng, 32, 32)
    img.save(os.path.join(idir, "a.png"), format="PNG")
    save_jpeg(mask, os.path.join(mdir, "a.jpg"), quality=90)


def make_low_bit():
    d = mkdir("low_bit")
    ys, xs = grid(24, 16)
    ramp = (xs + ys) / (xs + ys).max()                                       # 0..1 along the diagonal
    for bits in (1, 2, 4):
        levels = (1 << bits) - 1
        v = np.round(ramp * levels).astype(np.uint8)                         # 0..levels
        name = os.path.join(d, f"grey{bits}.png")
        if bits == 1:
            Image.fromarray(v * 255, "L").convert("1").save(name)
        else:
            Image.fromarray((v * (255 // levels)).astype(np.uint8), "L").save(name, bits=bits)
        Image.open(name).convert("L").save(os.path.join(d, f"grey{bits}.expected.png"))


def main():
    os.makedirs(ROOT, exist_ok=True)
    for s in SUBDIRS:
        shutil.rmtree(os.path.join(ROOT, s), ignore_errors=True)
    make_jpeg()
    make_voc()
    make_pets()
    make_colour_masks()
    make_folder("mixed", [(48, 76), (32, 32), (52, 92), (36, 20), (64, 48)], seed=5)
    make_folder("odd", [(45, 75)] * 5, seed=6)
    make_folder("jpeg_folder", [(40, 40)] * 4, seed=7, image_ext="jpg")
    make_jpeg_mask_folder()
    make_low_bit()


if __name__ == "__main__":
    main()
