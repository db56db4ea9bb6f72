#!/usr/bin/env python3
"""Deterministic generator for Torchport's image fixtures: real photos, decoder edge cases, and
torchvision's preprocessing and logits for each of them.

Run from the repository root (after `pip install scikit-image` into the pinned venv):

    .venv-torch/bin/python Fixtures/generate_images.py                      # rewrites Fixtures/images/
    .venv-torch/bin/python Fixtures/generate_images.py --check-determinism  # two fresh runs, compare sha256

What it writes (see Fixtures/images/README.md):
- the photos, copied byte for byte from scikit-image's bundled data (public domain / CC0, see
  LICENCES below) and images derived from them with Pillow: grayscale, CMYK and progressive JPEGs;
  RGBA, gray+alpha, palette (+tRNS), 1-bit, 16-bit RGB, 16-bit grayscale and Adam7-interlaced PNGs;
- `<image>.golden.pth` for every image = torch.save({"pixels", "logits"[, "input"]}):
    pixels  uint8   [1, 3, 224, 224]  the 8-bit samples torchvision's ToTensor receives, i.e. the
                                      output of Resize(256) + CenterCrop(224) on
                                      PIL.Image.open(p).convert("RGB"); ToTensor's [0, 1] tensor is
                                      exactly pixels / 255 (asserted below). Kept as uint8 to stay
                                      4x smaller than the float tensor, with no loss.
    logits  float32 [1, 10]           tiny-basic-r18ish (Fixtures/models) on the normalised tensor
    input   float32 [1, 3, 224, 224]  the normalised tensor (chelsea only, to keep the folder small:
                                      its golden also works with `torchport verify`)
- `tiny-classes.pth` and `tiny-idx-to-class.pth`: a 5-class micro ResNet saved inside training
  checkpoints that carry a class list (`classes` list / `idx_to_class` dict), for `classify`;
- `manifest.json`: per image its source, licence, PIL mode, size, and FNV-1a-64 digests of PIL's
  decoded RGB bytes and of the 8-bit resize+crop output, so decoders can be checked without torch;
- `Sources/Torchport/ImageNetLabels.swift`: the 1000 ImageNet class names torchvision ships in
  `ResNet50_Weights.IMAGENET1K_V2.meta["categories"]`.

The preprocessing is built explicitly (the ImageNet weights' `transforms()` resize to 232 for the V2
weights; the classic evaluation recipe, and Torchport's default, is 256):
    transforms.Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)])

Determinism: Pillow's encoders and torchvision's PIL path are deterministic; one torch thread,
`torch.use_deterministic_algorithms(True)`, goldens saved to in-memory buffers.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import skimage  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import transforms  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate_models  # noqa: E402  (asserts torch 2.15.0 / torchvision 0.29.2, one thread)

DEFAULT_OUT = HERE / "images"
LABELS_SWIFT = HERE.parent / "Sources" / "Torchport" / "ImageNetLabels.swift"
SKIMAGE_DATA = Path(skimage.__file__).resolve().parent / "data"
MAX_FILE_BYTES = 1 << 20       # every file under 1 MiB
MAX_IMAGE_BYTES = 3 << 20      # all images together under 3 MiB
MODEL = HERE / "models" / "tiny-basic-r18ish.pth"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# Licences as stated in scikit-image's `skimage.data` docstrings (checked for 0.26.0).
LICENCES = {
    "chelsea.png": "CC0 by the photographer (Stefan van der Walt); 'No copyright restrictions'",
    "coffee.png": "CC0 by the photographer (Rachel Michetti), courtesy of Pikolo Espresso Bar; "
                  "'No copyright restrictions'",
    "astronaut.png": "NASA photograph of Eileen Collins (NASA Great Images database); 'No known copyright "
                     "restrictions, released into the public domain'",
    "rocket.jpg": "SpaceX launch photo of DSCOVR on Falcon 9; released into the public domain by SpaceX",
    "camera.png": "CC0 by the photographer (Lav Varshney); 'No copyright restrictions'",
}

PREPROCESS = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=MEAN, std=STD),
])
GEOMETRY = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def fnv1a64_fast(arr: np.ndarray) -> str:
    # Same digest as fnv1a64, vectorised over chunks is not possible (it is sequential); the images
    # are small enough for the plain loop, but use Python ints on a bytes object for speed.
    return fnv1a64(arr.tobytes())


def skimage_photo(name: str) -> Image.Image:
    return Image.open(SKIMAGE_DATA / name)


def save_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def adam7_png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG with Adam7 interlacing (Pillow only writes non-interlaced PNGs)."""
    h, w, _ = rgb.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        sub = rgb[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + png_chunk(b"IEND", b""))


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def derived_images() -> list[tuple[str, bytes, str, str]]:
    """(file name, bytes, source, what it covers) for every image made from the photos."""
    chelsea = skimage_photo("chelsea.png").convert("RGB")
    coffee = skimage_photo("coffee.png").convert("RGB")
    astronaut = skimage_photo("astronaut.png").convert("RGB")
    rocket = skimage_photo("rocket.jpg").convert("RGB")
    camera = skimage_photo("camera.png").convert("L")
    out = []

    out.append(("chelsea-gray.jpg", encode(chelsea.convert("L"), "JPEG", quality=90),
                "chelsea.png", "grayscale (1-component) baseline JPEG"))
    out.append(("coffee-progressive.jpg", encode(coffee, "JPEG", quality=85, progressive=True, optimize=True),
                "coffee.png", "progressive JPEG, 4:2:0 chroma subsampling (fancy upsampling)"))

    # CMYK with a real black channel (k = 255 - max(r, g, b)), as print workflows write it.
    small = np.asarray(rocket.resize((320, 214), Image.BILINEAR)).astype(np.int32)
    k = 255 - small.max(axis=2)
    denom = np.maximum(255 - k, 1)
    cmy = [np.where(k == 255, 0, (255 - k - small[..., i]) * 255 // denom) for i in range(3)]
    cmyk = np.stack(cmy + [k], axis=2).astype(np.uint8)
    out.append(("rocket-cmyk.jpg", encode(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=90),
                "rocket.jpg", "CMYK JPEG with an Adobe marker (inverted storage), upscaled by Resize"))

    rgba = np.asarray(chelsea).copy()
    h, w, _ = rgba.shape
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = (255 * np.clip(1.2 - np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)), 0, 1)).astype(np.uint8)
    rgba = np.dstack([rgba, alpha])
    out.append(("chelsea-rgba.png", encode(Image.fromarray(rgba, "RGBA"), "PNG", optimize=True),
                "chelsea.png", "8-bit RGBA PNG (alpha dropped, not composited, as PIL's convert('RGB'))"))

    crop = camera.crop((150, 60, 350, 260))
    la = np.dstack([np.asarray(crop), np.asarray(crop)[::-1]]).astype(np.uint8)
    out.append(("camera-la.png", encode(Image.fromarray(la, "LA"), "PNG", optimize=True),
                "camera.png", "8-bit gray+alpha PNG, 200x200 (upscaled by Resize)"))

    pal = coffee.resize((300, 200), Image.BILINEAR).quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out.append(("coffee-palette.png", encode(pal, "PNG", transparency=0, optimize=True),
                "coffee.png", "8-bit palette PNG (64 colours) with a tRNS entry, 300x200"))

    bw = chelsea.convert("L").convert("1")
    out.append(("chelsea-1bit.png", encode(bw, "PNG"), "chelsea.png", "1-bit grayscale PNG (dithered)"))

    # 16-bit RGB: high byte = the 8-bit photo, low byte = deterministic noise, so a decoder that
    # rescales (v / 257) instead of keeping the high byte as PIL does is caught.
    a16 = np.asarray(astronaut.resize((192, 192), Image.BILINEAR)).astype(np.uint16)
    rng = np.random.default_rng(7)
    a16 = (a16 << 8) | rng.integers(0, 256, size=a16.shape, dtype=np.uint16)
    out.append(("astronaut-16bit.png", rgb16_png(a16), "astronaut.png",
                "16-bit RGB PNG, 192x192 (PIL keeps the high byte)"))

    # 16-bit gray holding 10-bit data (0..1020): PIL opens it as I;16 and clips to 255 in convert("RGB").
    g16 = (np.asarray(camera.crop((100, 100, 260, 260))).astype(np.uint16) * 4)
    out.append(("camera-16bit.png", encode(Image.fromarray(g16), "PNG"), "camera.png",
                "16-bit grayscale PNG with 10-bit data, 160x160 (PIL clips values above 255)"))

    inter = np.asarray(coffee.resize((150, 100), Image.BILINEAR))
    out.append(("coffee-interlaced.png", adam7_png(inter), "coffee.png", "Adam7-interlaced 8-bit RGB PNG, 150x100"))
    return out


def rgb16_png(a: np.ndarray) -> bytes:
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))


def tiny_model() -> torch.nn.Module:
    spec = next(s for s in generate_models.SPECS if s["name"] == "tiny-basic-r18ish")
    model = generate_models.build(spec)
    state = torch.load(MODEL, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def micro_model() -> torch.nn.Module:
    spec = dict(name="micro", block=generate_models.BASIC, layers=[1, 1, 1, 1], stage_widths=[4, 4, 8, 8],
                stem_width=4, num_classes=5, seed=3001)
    return generate_models.build(spec)


CIFAR_LIKE = ["airplane", "automobile", "bird", "cat", "deer"]


def labels_swift(categories: list[str]) -> str:
    lines = [
        "// Generated by Fixtures/generate_images.py from torchvision 0.29.2's",
        "// `ResNet50_Weights.IMAGENET1K_V2.meta[\"categories\"]` (the same list for every ImageNet-1k weight).",
        "// Do not edit by hand.",
        "",
        "extension ClassLabels {",
        "    /// The 1000 ImageNet-1k class names, in the order of a torchvision classifier's outputs",
        "    /// (`ResNet50_Weights.IMAGENET1K_V2.meta[\"categories\"]`): index 0 is `tench`, 281 `tabby`.",
        "    public static let imageNet: [String] = [",
    ]
    for c in categories:
        lines.append("        " + json.dumps(c) + ",")
    lines.append("    ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(out: Path, labels_path: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # everything but the hand-written README is regenerated
        if old.name != "README.md":
            old.unlink()
    torch.manual_seed(0)
    model = tiny_model()
    images: list[tuple[str, bytes, str, str]] = []
    for name in ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png"]:
        images.append((name, (SKIMAGE_DATA / name).read_bytes(), f"scikit-image {skimage.__version__} data/{name}",
                       "photo, copied unchanged"))
    images += derived_images()
    with_input = {"chelsea.png"}

    manifest = {"generator": "Fixtures/generate_images.py", "torch": torch.__version__.split("+")[0],
                "torchvision": torchvision.__version__.split("+")[0], "pillow": PIL.__version__,
                "scikit_image": skimage.__version__,
                "preprocessing": "Resize(256) bilinear, CenterCrop(224), ToTensor, Normalize(ImageNet mean/std)",
                "model": "models/tiny-basic-r18ish.pth", "images": []}
    image_bytes = 0
    for name, data, source, covers in images:
        (out / name).write_bytes(data)
        image_bytes += len(data)
        opened = Image.open(io.BytesIO(data))
        mode = opened.mode
        rgb = opened.convert("RGB")
        decoded = np.asarray(rgb)
        geo = np.asarray(GEOMETRY(rgb))
        pixels = torch.from_numpy(geo.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()
        x = PREPROCESS(rgb).unsqueeze(0)
        assert torch.equal(transforms.ToTensor()(Image.fromarray(geo)), pixels[0].float() / 255)
        with torch.no_grad():
            logits = model(x)
        golden = {"pixels": pixels, "logits": logits.contiguous()}
        if name in with_input:
            golden["input"] = x.contiguous()
        golden_name = name.rsplit(".", 1)[0] + ".golden.pth"
        (out / golden_name).write_bytes(save_bytes(golden))
        top = torch.topk(logits[0], 5)
        base = source.split("data/")[-1] if source.startswith("scikit-image") else source
        manifest["images"].append({
            "file": name, "golden": golden_name, "source": source, "covers": covers,
            "licence": LICENCES[base] if base == name else f"derived from {base} with Pillow; {LICENCES[base]}",
            "pil_mode": mode, "format": opened.format, "width": opened.width, "height": opened.height,
            "decoded_fnv1a64": fnv1a64_fast(decoded), "geometry_fnv1a64": fnv1a64_fast(geo),
            "top5": top.indices.tolist(), "top5_logit_gaps": [float(top.values[i] - top.values[i + 1]) for i in range(4)],
            "has_input": name in with_input,
        })
    assert image_bytes < MAX_IMAGE_BYTES, f"images take {image_bytes} bytes"

    # Training checkpoints with a class list next to the weights.
    micro = micro_model()
    (out / "tiny-classes.pth").write_bytes(save_bytes({"model": micro.state_dict(), "classes": CIFAR_LIKE, "epoch": 3}))
    (out / "tiny-idx-to-class.pth").write_bytes(save_bytes(
        {"state_dict": micro.state_dict(), "idx_to_class": {i: c for i, c in enumerate(CIFAR_LIKE)}}))
    manifest["class_list_checkpoints"] = {"tiny-classes.pth": "classes", "tiny-idx-to-class.pth": "idx_to_class",
                                          "classes": CIFAR_LIKE}

    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for f in out.iterdir():
        assert f.stat().st_size < MAX_FILE_BYTES, f"{f.name} is {f.stat().st_size} bytes"

    categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    assert len(categories) == 1000
    labels_path.write_text(labels_swift(categories))
    return manifest


def digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def check_determinism() -> int:
    runs = []
    for _ in range(2):
        tmp = Path(tempfile.mkdtemp())
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run([sys.executable, __file__, "--out", str(tmp / "images"), "--labels", str(tmp / "labels.swift")],
                       check=True, env=env)
        d = digests(tmp / "images")
        d["labels.swift"] = hashlib.sha256((tmp / "labels.swift").read_bytes()).hexdigest()
        runs.append(d)
        shutil.rmtree(tmp)
    if runs[0] != runs[1]:
        for k in sorted(set(runs[0]) | set(runs[1])):
            if runs[0].get(k) != runs[1].get(k):
                print("differs:", k)
        return 1
    print(f"deterministic: {len(runs[0])} files identical across two runs")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--labels", type=Path, default=LABELS_SWIFT)
    ap.add_argument("--check-determinism", action="store_true")
    args = ap.parse_args()
    if args.check_determinism:
        return check_determinism()
    manifest = generate(args.out, args.labels)
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {len(manifest['images'])} images with goldens to {args.out} ({total / 2**20:.2f} MiB), "
          f"labels to {args.labels}")
    for m in manifest["images"]:
        print(f"  {m['file']:24} {m['pil_mode']:5} {m['width']}x{m['height']}  top5 {m['top5']}  "
              f"min gap {min(m['top5_logit_gaps']):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
