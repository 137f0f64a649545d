"""Kernel -> Interrupt during GAN training, then re-running the notebook from the top, ends
with the same weights and metrics as a run that was never interrupted.

A copy of GAN-VAE (smoke profile, cut after the GAN's training cell, with 2 VAE and 4 GAN
epochs so that there is something to resume) runs once through the runner with
HW4_TRAIN=1, and once in a kernel driven here with HW4_TRAIN=auto: the GAN training cell is
interrupted (evcxr SIGKILLs its process: every variable is lost) after its first epoch's
checkpoint, then every cell runs again from the top. The VAE cell must load its finished
checkpoint in one line, the GAN cell must resume, and the saved weights (SHA-256 of the
safetensors files), histories and the non-time metrics must equal the uninterrupted run's."""
import hashlib
import json
import os
import queue
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEP = ':dep hw4 = { path = "../.." }'


def make_copy():
    nb = nbformat.read(ROOT / "notebooks" / "GAN-VAE.ipynb", as_version=4)
    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        src = c.source
        if src.startswith(":dep hw4"):
            src = DEP
        # Smoke epochs (the first of the three profile values): 2 for the VAE, 4 for the GAN.
        smoke = 2 if "let vae_cfg = VaeConfig {" in src else 4 if "let gan_cfg = GanConfig {" in src else None
        if smoke is not None:
            src = re.sub(r"num_epochs: s\.profile\.pick\(1, ", f"num_epochs: s.profile.pick({smoke}, ", src)
        cells.append(nbformat.v4.new_code_cell(src))
        if "let gan_run = train_gan(" in src:
            break
    assert any("num_epochs: s.profile.pick(2, " in c.source for c in cells) and "num_epochs: s.profile.pick(4, " in cells[-1].source
    out = nbformat.v4.new_notebook()
    out.metadata = nb.metadata
    out.cells = cells
    folder = ROOT / "outputs" / "interrupt-test"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "GAN-VAE.ipynb"
    nbformat.write(out, path)
    return path


def run_cell(kc, code, timeout, until=None):
    """Executes `code`; returns (status, stdout). `until()`, polled while the cell runs,
    may interrupt it (returns True once it did)."""
    msg_id = kc.execute(code)
    out, deadline, fired = [], time.time() + timeout, False
    while True:
        assert time.time() < deadline, f"cell timed out: {code[:60]!r}\n{''.join(out)}"
        if until and not fired:
            fired = until()
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        if msg["msg_type"] == "error":
            out.append(f"ERROR {msg['content'].get('ename')}: {msg['content'].get('evalue')}\n")
    while True:
        reply = kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]["status"], "".join(out)


def digests(folder):
    names = ["vae.safetensors", "vae_epoch_images.safetensors", "vae_history.json", "gan_generator.safetensors",
             "gan_discriminator.safetensors", "gan_generator_ema.safetensors", "gan_epoch_images.safetensors",
             "gan_history.json"]
    d = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names}
    m = json.loads((folder / "metrics.json").read_text())
    return d, {k: v for k, v in m.items() if not k.startswith("time.")}


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    jc = pytest.importorskip("jupyter_client.manager")
    nb_path = make_copy()
    base = dict(os.environ, HW4_PROFILE="smoke")
    # Uninterrupted.
    a = tmp_path / "a"
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), str(nb_path), "--profile", "smoke",
                        "--out", str(tmp_path / "nb")], env=dict(base, HW4_OUTPUT_DIR=str(a), HW4_TRAIN="1"),
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    want = digests(a / "GAN-VAE")

    # Interrupted during the GAN's training, after its first epoch's checkpoint.
    b = tmp_path / "b"
    ckpt = b / "GAN-VAE" / "gan.train.safetensors"
    env = dict(base, HW4_OUTPUT_DIR=str(b), HW4_TRAIN="auto")
    km, kc = jc.start_new_kernel(kernel_name="hw4", cwd=str(nb_path.parent), env=env, startup_timeout=120)
    try:
        cells = [c.source for c in nbformat.read(nb_path, as_version=4).cells]
        for code in cells[:-1]:
            status, out = run_cell(kc, code, 900)
            assert status == "ok", (code[:80], out)

        def interrupt():
            if ckpt.exists():
                km.interrupt_kernel()
                return True
            return False

        t0 = time.time()
        status, out = run_cell(kc, cells[-1], 900, until=interrupt)
        # (evcxr may still reply "ok" for a cell whose process it killed)
        assert ckpt.exists() and "samples from one fixed noise batch" not in out, \
            f"the GAN cell was not interrupted ({time.time() - t0:.1f} s):\n{out}"
        assert not (b / "GAN-VAE" / "gan_generator.safetensors").exists(), "interrupted after the end of training"
        # Every variable is gone: re-run from the top.
        outs = []
        for code in cells:
            status, out = run_cell(kc, code, 900)
            assert status == "ok", (code[:80], out)
            outs.append(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(outs)
    assert "vae: loaded the finished training (2 epochs) from " in text, text
    assert "gan: resuming after epoch " in text, text
    got = digests(b / "GAN-VAE")
    print("uninterrupted:", json.dumps(want[0], indent=1))
    print("resumed:      ", json.dumps(got[0], indent=1))
    assert got[0] == want[0]
    assert got[1] == want[1]
