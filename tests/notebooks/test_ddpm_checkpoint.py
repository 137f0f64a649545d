"""The DDPM notebook's checkpoints load in PyTorch: it runs the notebook (as its cargo
example, smoke profile) into a temporary folder, reads `unet.safetensors` and
`unet_ema.safetensors` with the `safetensors` package, checks names and shapes, and loads
them strictly into the PyTorch port of the U-Net in bench/ddpm.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ddpm_outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddpm")
    env = dict(os.environ, HW4_PROFILE="smoke", HW4_OUTPUT_DIR=str(out))
    build = subprocess.run(["cargo", "build", "--quiet", "--example", "ddpm"], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    ran = subprocess.run([str(ROOT / "target" / "debug" / "examples" / "ddpm")], cwd=ROOT / "notebooks",
                         env=env, capture_output=True, text=True, timeout=1800)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return out / "DDPM"


def test_DDPM_checkpoint_loads_in_pytorch(ddpm_outputs):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    sys.path.insert(0, str(ROOT / "bench"))
    import ddpm as port

    metrics = json.loads((ddpm_outputs / "metrics.json").read_text())
    cfg = metrics["ddpm.unet_config"]
    raw = load_file(str(ddpm_outputs / "unet.safetensors"))
    ema = load_file(str(ddpm_outputs / "unet_ema.safetensors"))
    assert {k: tuple(v.shape) for k, v in raw.items()} == {k: tuple(v.shape) for k, v in ema.items()}
    assert sum(v.numel() for v in raw.values()) == metrics["ddpm.params.unet"]
    c, temb = cfg["base_ch"], cfg["temb_size"]
    expected = {
        "conv_in.weight": (c, cfg["in_ch"], 3, 3),
        "temb1.weight": (4 * temb, temb),
        "temb2.weight": (4 * temb, 4 * temb),
        "downs.0.resnets.0.conv1.weight": (c, c, 3, 3),
        "downs.0.down.weight": (c, c, 3, 3),
        "downs.3.attns.0.attn.qkv.weight": (6 * c, 2 * c),
        "downs.4.resnets.0.shortcut.weight": (4 * c, 2 * c, 1, 1),
        "mid.attn.attn.proj.weight": (4 * c, 4 * c),
        "ups.0.resnets.0.conv1.weight": (4 * c, 8 * c, 3, 3),
        "ups.5.resnets.0.temb_proj.weight": (c, 4 * temb),
        "norm_out.weight": (c,),
        "conv_out.weight": (cfg["out_ch"], c, 3, 3),
    }
    for name, shape in expected.items():
        assert name in raw, name
        assert tuple(raw[name].shape) == shape, (name, tuple(raw[name].shape), shape)
    assert all(torch.isfinite(v).all() for v in raw.values())

    net = port.UNet(cfg["in_ch"], cfg["out_ch"], c, temb, cfg["norm_groups"], cfg["layers_down"],
                    cfg["layers_up"], cfg["num_heads"])
    net.load_state_dict(ema, strict=True)
    x = torch.zeros(2, cfg["in_ch"], cfg["height"], cfg["width"])
    with torch.no_grad():
        y = net(x, torch.tensor([0, 999]))
    assert y.shape == x.shape and torch.isfinite(y).all()
