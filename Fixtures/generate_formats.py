#!/usr/bin/env python3
"""Deterministic generator for Torchport's "any checkpoint" fixtures (`Fixtures/formats/`).

Run from the repository root:

    .venv-torch/bin/python Fixtures/generate_formats.py           # rewrites Fixtures/formats/
    .venv-torch/bin/python Fixtures/check_formats.py              # converts each with the built torchport
                                                                  # and loads it with load_state_dict(strict=True)

Every fixture is a checkpoint layout people bring to `torchport convert`, holding a small network
that is not a ResNet (or is, saved whole). `formats/expected.json` lists, per fixture, the state dict
that `model.state_dict()` gives (name, dtype, shape, sha256 of the contiguous little-endian bytes),
the non-tensor values a converter should keep (epoch, args, classes, hyper-parameters), and what it
should drop (the optimizer state). Swift tests (`FormatsFixtureTests`, `ConvertAnyTests`) check
Torchport's reading and conversion against it bit for bit, without torch.

Fixtures (all tiny; the generator asserts < 1 MiB in all):
  vit-tiny.pth                 torchvision VisionTransformer (16x16, patch 8, 1 layer, hidden 16), state dict
  densenet-tiny.pth            torchvision DenseNet (growth 4, blocks (1, 1), 8 init features), state dict
  mobilenet-v2-narrow.pth      torchvision mobilenet_v2(width_mult=0.1, 10 classes, 3 inverted-residual
                               stages) with its last 1x1 block and classifier narrowed from 1280 to 64
                               channels, state dict behind `module.` (DataParallel)
  training-vit.pth             {"epoch", "model", "optimizer", "args": argparse.Namespace, "classes"}
                               (torchvision's reference scripts' layout; optimizer = SGD with momentum
                               after one step, so it holds tensors)
  lightning-densenet.ckpt      PyTorch Lightning's layout written without Lightning: {"epoch",
                               "global_step", "pytorch-lightning_version", "state_dict": {"model.<k>"},
                               "hyper_parameters", "optimizer_states", "lr_schedulers", "callbacks", "loops"}
  hf-vit.bin                   Hugging Face's `pytorch_model.bin` (a plain zip state dict)
  whole-resnet.pth             torch.save(model) of torchvision's own ResNet class (narrow stages)
  whole-mobilenet.pth          torch.save(model) of that MobileNetV2
  sharded-bin/                 pytorch_model.bin.index.json + 2 `.bin` shards (the densenet)
  sharded-safetensors/         model.safetensors.index.json + 2 `.safetensors` shards (the vit)
  dcp/                         torch.distributed.checkpoint.save from 2 ranks (gloo, CPU): `.metadata`
                               and `__0_0.distcp`, `__1_0.distcp`; a DTensor sharded on dim 0, one
                               sharded on dim 1, one replicated (DTensor Replicate), a plain tensor
                               and a plain int (`epoch`: BytesStorageMetadata)
  dcp-resnet/                  the whole-model ResNet's state dict saved by 2 ranks (conv weights Shard(0),
                               the rest replicated), with dcp-resnet.golden.pth (input, logits) for `verify`

Determinism: one thread, every model seeded; checkpoints saved to in-memory buffers (zip folder
`archive/`), written only if their bytes changed. `dcp/` is written by torch's FileSystemWriter
(zip folders named by torch, pickled metadata); `--check-determinism` compares two runs' sha256.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.densenet import DenseNet  # noqa: E402
from torchvision.models.resnet import BasicBlock, ResNet  # noqa: E402
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402

assert torch.__version__.startswith("2.15.0"), f"need torch 2.15.0, have {torch.__version__}"
assert torchvision.__version__.startswith("0.29.2"), f"need torchvision 0.29.2, have {torchvision.__version__}"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "formats"
LIMIT_TOTAL = 1 << 20


def seed(n: int) -> None:
    torch.manual_seed(n)
    random.seed(n)
    np.random.seed(n)


def save_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def randomize(model: nn.Module) -> nn.Module:
    """Non-trivial values in every parameter and buffer (BatchNorm statistics, counters)."""
    with torch.no_grad():
        for i, m in enumerate(mm for mm in model.modules() if isinstance(mm, nn.BatchNorm2d)):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(100 + i)
    return model.eval()


def vit_tiny() -> nn.Module:
    seed(1601)
    return randomize(VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2,
                                       hidden_dim=16, mlp_dim=32, num_classes=10))


def densenet_tiny() -> nn.Module:
    seed(1602)
    return randomize(DenseNet(growth_rate=4, block_config=(1, 1), num_init_features=8, bn_size=2,
                              num_classes=10))


def mobilenet_narrow() -> nn.Module:
    seed(1603)
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2]]
    m = torchvision.models.mobilenet_v2(width_mult=0.1, num_classes=10, inverted_residual_setting=setting)
    # torchvision fixes the last width at 1280: narrowed to 64 with its own classes, so the file stays tiny.
    last_in = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(last_in, 64, kernel_size=1, norm_layer=nn.BatchNorm2d,
                                          activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(64, 10)
    return randomize(m)


def resnet_whole() -> nn.Module:
    """torchvision's own `ResNet` class (so `torch.save(model)` names `torchvision.models.resnet.ResNet`),
    built with narrow stages by the same steps as `ResNet.__init__`."""
    seed(1604)
    m = ResNet.__new__(ResNet)
    nn.Module.__init__(m)
    m._norm_layer = nn.BatchNorm2d
    m.inplanes, m.dilation, m.groups, m.base_width = 8, 1, 1, 64
    m.conv1 = nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(8)
    m.relu = nn.ReLU(inplace=True)
    m.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    m.layer1 = m._make_layer(BasicBlock, 8, 1)
    m.layer2 = m._make_layer(BasicBlock, 16, 1, stride=2)
    m.layer3 = m._make_layer(BasicBlock, 16, 1, stride=2)
    m.layer4 = m._make_layer(BasicBlock, 16, 1, stride=2)
    m.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    m.fc = nn.Linear(16, 5)
    # A non-persistent buffer: in `_buffers` but not in `state_dict()`.
    m.register_buffer("scratch", torch.zeros(3), persistent=False)
    return randomize(m)


def tensor_entry(t: torch.Tensor) -> dict:
    c = t.detach().contiguous()
    raw = c.reshape(-1).view(torch.uint8).numpy().tobytes() if c.numel() else b""
    return {"dtype": str(c.dtype).replace("torch.", ""), "shape": list(c.shape),
            "sha256": hashlib.sha256(raw).hexdigest()}


def state_entries(sd: dict) -> dict:
    return {k: tensor_entry(v) for k, v in sd.items()}


def one_sgd_step(model: nn.Module, image_size: int) -> torch.optim.Optimizer:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    x = torch.randn(2, 3, image_size, image_size)
    model(x).sum().backward()
    opt.step()
    model.eval()
    return opt


def write(name: str, data: bytes, written: list) -> None:
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    written.append(path)


def dcp_worker(rank: int, world: int, folder: str, port: int) -> None:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    import uuid
    # `StorageMeta.save_id` is a uuid4: fixed, so `.metadata` is the same on every run.
    uuid.uuid4 = lambda: uuid.UUID(int=0x1605)
    os.chdir(Path(folder).parent)  # `StorageMeta.checkpoint_id` is the relative path `dcp`
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    mesh = init_device_mesh("cpu", (world,))
    full = dcp_full_tensors()
    sd = {
        "encoder.weight": distribute_tensor(full["encoder.weight"], mesh, [Shard(0)]),
        "decoder.weight": distribute_tensor(full["decoder.weight"], mesh, [Shard(1)]),
        "norm.bias": distribute_tensor(full["norm.bias"], mesh, [Replicate()]),
        "step": full["step"],
        "epoch": 3,  # not a tensor: BytesStorageMetadata, a pickled value (left out by Torchport, and listed)
    }
    dcp.save(sd, checkpoint_id=Path(folder).name)
    dist.barrier()
    # The whole-model ResNet's state dict, conv weights sharded on their output channels, the rest
    # replicated: `verify` runs it against a golden straight from the folder.
    resnet = {k: distribute_tensor(v, mesh, [Shard(0)] if v.dim() == 4 else [Replicate()])
              for k, v in resnet_whole().state_dict().items()}
    dcp.save(resnet, checkpoint_id=Path(folder).name + "-resnet")
    dist.barrier()
    dist.destroy_process_group()


def dcp_full_tensors() -> dict:
    seed(1605)
    return {
        "encoder.weight": torch.randn(6, 5),
        "decoder.weight": torch.randn(3, 8, dtype=torch.float64),
        "norm.bias": torch.randn(7).to(torch.bfloat16),
        "step": torch.tensor(12, dtype=torch.int64),
    }


def make_dcp(folder: Path) -> None:
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    mp.start_processes(dcp_worker, args=(2, str(folder), port), nprocs=2, join=True, start_method="spawn")


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    OUT = args.out
    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    expected: dict = {}

    vit, dense, mobile = vit_tiny(), densenet_tiny(), mobilenet_narrow()

    write("vit-tiny.pth", save_bytes(vit.state_dict()), written)
    expected["vit-tiny.pth"] = {"model": "torchvision.models.VisionTransformer", "resnet": False,
                                "state_dict": state_entries(vit.state_dict()), "kept": {}, "dropped": []}

    write("densenet-tiny.pth", save_bytes(dense.state_dict()), written)
    expected["densenet-tiny.pth"] = {"model": "torchvision.models.DenseNet", "resnet": False,
                                     "state_dict": state_entries(dense.state_dict()), "kept": {}, "dropped": []}

    wrapped = {"module." + k: v for k, v in mobile.state_dict().items()}
    write("mobilenet-v2-narrow.pth", save_bytes(wrapped), written)
    expected["mobilenet-v2-narrow.pth"] = {"model": "torchvision.models.MobileNetV2", "resnet": False,
                                           "state_dict": state_entries(mobile.state_dict()), "kept": {},
                                           "dropped": [], "stripped": "module."}

    # A training checkpoint as torchvision's reference scripts write it.
    seed(1606)
    train_vit = vit_tiny()
    opt = one_sgd_step(train_vit, 16)
    classes = ["apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew", "kiwi", "lemon"]
    ns = argparse.Namespace(lr=0.1, epochs=90, model="vit_tiny", batch_size=32, amp=False, data_path="/data/fruit",
                            weight_decay=1e-4, label_smoothing=0.1, resume="")
    training = {"model": train_vit.state_dict(), "optimizer": opt.state_dict(), "epoch": 7, "args": ns,
                "classes": classes}
    write("training-vit.pth", save_bytes(training), written)
    expected["training-vit.pth"] = {
        "model": "torchvision.models.VisionTransformer", "resnet": False,
        "state_dict": state_entries(train_vit.state_dict()),
        "kept": {"epoch": 7, "args": vars(ns), "classes": classes},
        "dropped": ["optimizer"], "classes": classes}

    # Lightning's layout (`model` is the LightningModule attribute holding the network).
    seed(1607)
    light = densenet_tiny()
    lopt = one_sgd_step(light, 32)
    hparams = {"lr": 0.05, "growth_rate": 4, "block_config": [1, 1], "num_classes": 10, "name": "densenet-tiny"}
    ckpt = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.5.0",
            "state_dict": {"model." + k: v for k, v in light.state_dict().items()},
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}},
            "callbacks": {}, "optimizer_states": [lopt.state_dict()], "lr_schedulers": [],
            "hyper_parameters": hparams}
    write("lightning-densenet.ckpt", save_bytes(ckpt), written)
    expected["lightning-densenet.ckpt"] = {
        "model": "torchvision.models.DenseNet", "resnet": False, "state_dict": state_entries(light.state_dict()),
        "kept": {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.5.0",
                 "hyper_parameters": hparams, "loops": ckpt["loops"], "callbacks": {}, "lr_schedulers": []},
        "dropped": ["optimizer_states"], "stripped": "model."}

    write("hf-vit.bin", save_bytes(vit.state_dict()), written)
    expected["hf-vit.bin"] = {"model": "torchvision.models.VisionTransformer", "resnet": False,
                              "state_dict": state_entries(vit.state_dict()), "kept": {}, "dropped": []}

    # Whole-model pickles: torch.save(model).
    whole = resnet_whole()
    write("whole-resnet.pth", save_bytes(whole), written)
    expected["whole-resnet.pth"] = {"model": "torchvision.models.resnet.ResNet", "resnet": True,
                                    "state_dict": state_entries(whole.state_dict()), "kept": {}, "dropped": []}
    write("whole-mobilenet.pth", save_bytes(mobile), written)
    expected["whole-mobilenet.pth"] = {"model": "torchvision.models.mobilenetv2.MobileNetV2", "resnet": False,
                                       "state_dict": state_entries(mobile.state_dict()), "kept": {}, "dropped": []}

    # Hugging Face sharded layouts: `.bin` shards (the densenet), `.safetensors` shards (the vit).
    from safetensors.torch import save as st_save
    for folder, model, ext, prefix in [("sharded-bin", dense, "bin", "pytorch_model"),
                                       ("sharded-safetensors", vit, "safetensors", "model")]:
        sd = model.state_dict()
        names = list(sd)
        half = len(names) // 2
        groups = [names[:half], names[half:]]
        weight_map, total = {}, 0
        for i, group in enumerate(groups):
            shard = f"{prefix}-{i + 1:05d}-of-{len(groups):05d}.{ext}"
            part = {k: sd[k].contiguous() for k in group}
            data = save_bytes(part) if ext == "bin" else st_save(part, metadata={"format": "pt"})
            write(f"{folder}/{shard}", data, written)
            for k in group:
                weight_map[k] = shard
                total += sd[k].numel() * sd[k].element_size()
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        index_name = f"{prefix}.{ext}.index.json"
        write(f"{folder}/{index_name}", (json.dumps(index, indent=2) + "\n").encode(), written)
        expected[f"{folder}/{index_name}"] = {"model": type(model).__name__, "resnet": False,
                                              "state_dict": state_entries(sd), "kept": {}, "dropped": []}

    # torch.distributed.checkpoint from two ranks (written in a scratch folder also named `dcp`).
    with tempfile.TemporaryDirectory() as tmp:
        make_dcp(Path(tmp) / "dcp")
        for name in ["dcp", "dcp-resnet"]:
            for f in sorted((Path(tmp) / name).iterdir()):
                write(f"{name}/{f.name}", f.read_bytes(), written)
    resnet = resnet_whole()
    seed(1608)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        golden = {"input": x, "logits": resnet(x), "logits_f64": copy.deepcopy(resnet).double()(x.double())}
    write("dcp-resnet.golden.pth", save_bytes(golden), written)
    expected["dcp-resnet"] = {"model": "torchvision.models.resnet.ResNet", "resnet": True,
                              "state_dict": state_entries(resnet.state_dict()), "kept": {}, "dropped": []}
    expected["dcp"] = {"model": "dcp", "resnet": False, "state_dict": state_entries(dcp_full_tensors()),
                       "kept": {}, "dropped": ["epoch"]}

    text = json.dumps(expected, indent=1, sort_keys=True) + "\n"
    write("expected.json", text.encode(), written)
    total = sum(p.stat().st_size for p in written)
    for p in written:
        print(f"{p.stat().st_size:>8}  {p.relative_to(ROOT)}")
    print(f"{total:>8}  in all")
    assert total < LIMIT_TOTAL, f"formats fixtures are {total} bytes, over {LIMIT_TOTAL}"


if __name__ == "__main__":
    main()
