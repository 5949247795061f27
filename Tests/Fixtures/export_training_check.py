#!/usr/bin/env python3
"""Checks a `segkit export-training` folder end to end on Keras 3 + TensorFlow.
A developer check (not in CI: it needs a Python with TensorFlow 2.16+ and
scipy for border-weight runs, and a few minutes of CPU):

  /work/venvs/tf/bin/python Tests/Fixtures/export_training_check.py --segkit .build/release/segkit --dir EXPORT

or, to make a small export first (SegKit's demo classifier as a transposed-skips
segmenter, 24 fashion-canvas images of 64x64, 2 epochs of batch 8):

  /work/venvs/tf/bin/python Tests/Fixtures/export_training_check.py --segkit .build/release/segkit --demo /tmp/export-demo

The steps, each PASS or FAIL:
 a. `train.py --check`: exits 0 (the Keras loss of the first batch is within
    1e-5 of SegKit's, the frozen layers exist, every size has a placement).
 b. `train.py --epochs 2` under MirroredStrategy (this machine's CPU): exits 0,
    writes best.keras and history.csv (SegKit's header, one line per epoch);
    best.keras loads in Keras with the frozen layers' weights equal to
    segmenter.keras's and some trainable weight changed.
 c. the same with MultiWorkerMirroredStrategy: two worker processes on
    127.0.0.1 (free ports, TF_CONFIG each); both exit 0, the chief's outputs
    are checked as in b.
 d. `segkit eval OUT/best.keras --data ...` (on the run's validation data, or
    its training data) exits 0; with separate validation data its mIoU is
    compared with the best epoch's val_mean_iou.
Exit status 0 when every step passed.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HEADER = "epoch,loss,val_loss,val_pixel_accuracy,val_mean_iou,learning_rate,seconds"
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def read_config(train_py):
    """The settings SegKit wrote into train.py's CONFIG line."""
    text = open(train_py).read()
    m = re.search(r"^CONFIG = json\.loads\(r'''(.*?)'''\)\s*$", text, re.M | re.S)
    if not m:
        raise SystemExit(f"{train_py}: no `CONFIG = json.loads(r'''...''')` line (is it the unfilled template?)")
    return json.loads(m.group(1))


def run(cmd, log, timeout, env=None, cwd=None):
    """Runs cmd, output to log; (exit status, output)."""
    started = time.time()
    with open(log, "w") as f:
        try:
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=timeout)
            code = p.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    out = open(log).read()
    print(f"    $ {' '.join(cmd)}  -> exit {code} in {time.time() - started:.0f}s (log {log})", flush=True)
    return code, out


def free_ports(n):
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def check_outputs(out, cfg, export_dir, epochs):
    """Problems with a run's outputs (empty when fine)."""
    import numpy as np
    import keras
    problems = []
    best, history = os.path.join(out, "best.keras"), os.path.join(out, "history.csv")
    for path in (best, history):
        if not os.path.exists(path):
            problems.append(f"{path} is missing")
    if problems:
        return problems, None
    lines = open(history).read().splitlines()
    if not lines or lines[0] != HEADER:
        problems.append(f"history.csv header is {lines[:1]}, expected {HEADER}")
    rows = [line.split(",") for line in lines[1:]]
    if not 1 <= len(rows) <= epochs or any(len(r) != 7 for r in rows):
        problems.append(f"history.csv has {len(rows)} epoch line(s) (expected 1 to {epochs} of 7 fields)")
    before = keras.saving.load_model(os.path.join(export_dir, cfg.get("segmenter") or "segmenter.keras"), compile=False)
    after = keras.saving.load_model(best, compile=False)
    frozen = set(cfg.get("frozen_layers") or [])
    changed = 0
    for layer in before.layers:
        w0 = layer.get_weights()
        try:
            w1 = after.get_layer(layer.name).get_weights()
        except ValueError:
            problems.append(f"best.keras has no layer {layer.name}")
            continue
        same = len(w0) == len(w1) and all(np.array_equal(a, b) for a, b in zip(w0, w1))
        if layer.name in frozen and not same:
            problems.append(f"frozen layer {layer.name} changed")
        if layer.name not in frozen and layer.trainable and w0 and not same:
            changed += 1
    if changed == 0:
        problems.append("no trainable layer's weights changed")
    print(f"    history: {len(rows)} epoch(s); last: {lines[-1] if rows else '-'}; {changed} trainable layer(s) changed, "
          f"{len(frozen)} frozen unchanged" + ("" if problems else " - fine"), flush=True)
    return problems, rows


def data_spec(source, cfg, work):
    """`segkit eval --data` (and options) for a settings data source."""
    kind, path = source["kind"], source["path"]
    if kind == "hdf5" and not os.path.isabs(path):
        path = os.path.join(work["dir"], path)
    extra = []
    if kind == "voc":
        spec = f"voc:{path}:{source.get('split') or 'train'}"
    elif kind == "pets":
        spec = f"pets:{path}:{source.get('split') or 'trainval'}:border={source.get('border') or 'ignore'}"
    else:
        spec = path
    if kind == "folder" and cfg.get("mask_colors"):
        colours = os.path.join(work["tmp"], "mask_colors.txt")
        names = cfg.get("class_names") or [f"class_{k}" for k in range(len(cfg["mask_colors"]))]
        with open(colours, "w") as f:
            for (r, g, b), name in zip(cfg["mask_colors"], names):
                f.write(f"{r},{g},{b} {name}\n")
        extra += ["--mask-colors", colours]
    if cfg.get("ignore_label") is not None:
        extra += ["--ignore-label", str(cfg["ignore_label"])]
    return ["--data", spec] + extra


def assemble_demo(segkit, work, env):
    """A small export by `segkit export-training`."""
    os.makedirs(work, exist_ok=True)
    seg, data, export = os.path.join(work, "seg.keras"), os.path.join(work, "data"), os.path.join(work, "export")
    log = lambda name: os.path.join(work, name + ".log")  # noqa: E731
    steps = [[segkit, "build", "--recipe", "transposed-skips", "--classifier", os.path.join(ROOT, "Recipes", "demo", "classifier.keras"), "--out", seg],
             [segkit, "data", "fashion-canvas:count=24,size=64,seed=1", "--folder", "--out", data]]
    for k, cmd in enumerate(steps):
        if os.path.exists(cmd[-1]):
            continue
        code, out = run(cmd, log(f"demo-{k}"), 600, env)
        if code != 0:
            raise SystemExit(f"demo: {' '.join(cmd)} failed:\n{out[-2000:]}")
    shutil.rmtree(export, ignore_errors=True)
    code, out = run([segkit, "export-training", seg, "--data", data, "--epochs", "2", "--batch", "8", "--out", export],
                    log("demo-export"), 600, env)
    if code != 0:
        raise SystemExit(f"demo: segkit export-training failed:\n{out[-2000:]}")
    return export
    print("    (this segkit has no export-training: assembling the export folder by hand)", flush=True)
    names = sorted(os.listdir(os.path.join(data, "images")))
    pairs = [["images/" + n, "masks/" + n] for n in names]
    held = max(1, int(len(pairs) * 0.1))
    train_pairs = pairs[:-held]
    ref = os.path.join(work, "reference.keras")
    code, out = run([segkit, "train", seg, "--data", data, "--val-fraction", "0.1", "--batch", str(len(train_pairs)), "--epochs", "1",
                     "--lr", "1e-12", "--out", ref], log("demo-reference"), 600, env)
    if code != 0:
        raise SystemExit(f"demo: segkit train (reference loss) failed:\n{out[-2000:]}")
    reference_loss = float(open(os.path.join(work, "reference.history.csv")).read().splitlines()[1].split(",")[1])
    cfg = {
        "format": "segkit-training/1", "segkit_version": "hand-assembled", "command": "export_training_check.py --demo",
        "segmenter": "segmenter.keras", "classes": 11, "class_names": [f"class_{k}" for k in range(11)], "background_class": 10,
        "ignore_label": None, "input_channels": 1, "input_scale": "unit",
        "data": {"kind": "folder", "path": os.path.abspath(data)}, "mask_colors": None, "val_data": None, "val_fraction": 0.1,
        "train_files": train_pairs, "val_files": pairs[-held:], "train_indices": None, "val_indices": None,
        "epochs": 2, "batch": 8, "optimizer": "adam", "lr": 0.001, "momentum": 0.9, "weight_decay": 0.0, "schedule": "constant",
        "loss": "ce", "class_weights": None, "border_weight": None, "augment": [], "scale_range": None, "crop": None,
        "seed": 0, "patience": None, "frozen_layers": ["conv1", "conv2", "conv3", "fc1", "predictions"],
        "placement": {"rows": {"64": [0, 0, 0, 64]}, "cols": {"64": [0, 0, 0, 64]}},
        "check": {"train_positions": list(range(len(train_pairs))), "loss": reference_loss, "mode": "inference"},
    }
    os.makedirs(export)
    shutil.copy(seg, os.path.join(export, "segmenter.keras"))
    template = open(os.path.join(ROOT, "Recipes", "export", "train.py")).read()
    marker = "CONFIG = None  # segkit export-training writes this run's settings here\n"
    if template.count(marker) != 1:
        raise SystemExit("Recipes/export/train.py: the CONFIG marker line is not there exactly once")
    settings = json.dumps(cfg).replace("'", "\\u0027")
    with open(os.path.join(export, "train.py"), "w") as f:
        f.write(template.replace(marker, f"CONFIG = json.loads(r'''{settings}''')\n"))
    return export


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segkit", required=True, help="the segkit binary")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir", help="a folder written by `segkit export-training`")
    where.add_argument("--demo", metavar="WORK", help="make a small export in WORK first (see above)")
    parser.add_argument("--python", default=sys.executable, help="the Python with TensorFlow that runs train.py (default: this one)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--work", help="where run outputs and logs go (default: a temporary folder, kept)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per step")
    parser.add_argument("--skip", default="", help="steps to skip, e.g. c,d")
    args = parser.parse_args()

    segkit = os.path.abspath(args.segkit)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env = clean_env()
    env.setdefault("SEGKIT_RECIPES", os.path.join(ROOT, "Recipes"))
    export = os.path.abspath(assemble_demo(segkit, os.path.abspath(args.demo), env) if args.demo else args.dir)
    train_py = os.path.join(export, "train.py")
    cfg = read_config(train_py)
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="export-check-"))
    os.makedirs(work, exist_ok=True)
    print(f"export {export} ({cfg.get('command', '?')})\nwork {work}", flush=True)
    results = []

    def step(name, fn):
        if name[0] in args.skip.split(","):
            results.append((name, "SKIP", ""))
            return
        print(f"[{name}]", flush=True)
        try:
            problems = fn()
        except Exception as e:  # a failing step must not hide the others
            problems = [f"{type(e).__name__}: {e}"]
        results.append((name, "FAIL" if problems else "PASS", "; ".join(problems)))
        for p in problems:
            print(f"    problem: {p}", flush=True)

    def a_check():
        code, out = run([args.python, train_py, "--check"], os.path.join(work, "a-check.log"), args.timeout, env)
        line = next((l for l in out.splitlines() if l.startswith("first-batch loss")), None)
        print(f"    {line or 'no first-batch loss line'}", flush=True)
        return [] if code == 0 and line else [f"train.py --check exited {code}: {out.strip().splitlines()[-1] if out.strip() else ''}"]

    def b_mirrored():
        out = os.path.join(work, "mirrored")
        shutil.rmtree(out, ignore_errors=True)
        code, log = run([args.python, train_py, "--epochs", str(args.epochs), "--out", out, "--verbose", "2"],
                        os.path.join(work, "b-mirrored.log"), args.timeout, env)
        if code != 0:
            return [f"train.py exited {code}: {log.strip().splitlines()[-1] if log.strip() else ''}"]
        problems, _ = check_outputs(out, cfg, export, args.epochs)
        return problems

    def c_multiworker():
        out = os.path.join(work, "multiworker")
        shutil.rmtree(out, ignore_errors=True)
        ports = free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        procs = []
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = open(os.path.join(work, f"c-worker{index}.log"), "w")
            procs.append((subprocess.Popen([args.python, train_py, "--epochs", str(args.epochs), "--out", out, "--verbose", "2"],
                                           stdout=log, stderr=subprocess.STDOUT, env=clean_env(TF_CONFIG=tf_config)), log))
        print(f"    two workers on ports {ports[0]}, {ports[1]} (logs {work}/c-worker0.log, c-worker1.log)", flush=True)
        deadline, problems = time.time() + args.timeout, []
        for index, (p, log) in enumerate(procs):
            try:
                code = p.wait(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                code = "timeout"
            log.close()
            if code != 0:
                tail = open(os.path.join(work, f"c-worker{index}.log")).read().strip().splitlines()
                problems.append(f"worker {index} exited {code}: {tail[-1] if tail else ''}")
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
        if problems:
            return problems
        text = open(os.path.join(work, "c-worker0.log")).read()
        if "MultiWorkerMirroredStrategy" not in text:
            problems.append("the chief's log does not name MultiWorkerMirroredStrategy")
        more, _ = check_outputs(out, cfg, export, args.epochs)
        return problems + more

    def d_eval():
        outs = [os.path.join(work, d, "best.keras") for d in ("mirrored", "multiworker")]
        best = next((p for p in outs if os.path.exists(p)), None)
        if best is None:
            return ["no best.keras from step b or c to evaluate"]
        source = cfg.get("val_data") or cfg["data"]
        code, out = run([segkit, "eval", best] + data_spec(source, cfg, {"dir": export, "tmp": work}) + ["--json"],
                        os.path.join(work, "d-eval.log"), args.timeout, env)
        if code != 0:
            return [f"segkit eval exited {code}: {out.strip().splitlines()[-1] if out.strip() else ''}"]
        try:
            report = json.loads(out[out.index("{"):])
        except ValueError:
            return ["segkit eval --json printed no JSON"]
        print(f"    segkit eval: mIoU {report['mean_iou']:.6f}, pixel accuracy {report['pixel_accuracy']:.6f}", flush=True)
        if cfg.get("val_data"):
            rows = [line.split(",") for line in open(os.path.join(os.path.dirname(best), "history.csv")).read().splitlines()[1:]]
            best_miou = max(float(r[4]) for r in rows)
            print(f"    train.py's best val_mean_iou {best_miou:.6f}", flush=True)
            if abs(best_miou - report["mean_iou"]) > 1e-3:
                return [f"segkit eval's mIoU {report['mean_iou']:.6f} differs from train.py's best val_mean_iou {best_miou:.6f}"]
        return []

    step("a: train.py --check", a_check)
    step("b: 2 epochs, MirroredStrategy", b_mirrored)
    step("c: 2 epochs, MultiWorkerMirroredStrategy x2", c_multiworker)
    step("d: segkit eval best.keras", d_eval)

    print("\nSummary")
    for name, verdict, why in results:
        print(f"  {verdict}  {name}" + (f"  ({why})" if why else ""))
    failed = sum(v == "FAIL" for _, v, _ in results)
    passed = sum(v == "PASS" for _, v, _ in results)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
