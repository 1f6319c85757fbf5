"""PyTorch twins of svhn's tfjs models that are not in torch_bench.py's notebook pair.

resnet: src/models/resnet.ts layer for layer (ResNet-20 after He et al. 2016, section 4.2):
  stem Conv(16, 3x3, same) -> BN -> ReLU; 3 stages of 3 basic blocks (16, 32, 64 filters;
  stride 2 at the first block of stages 2 and 3, 1x1 conv + BN shortcut there);
  global average pooling -> Dropout(0.2) -> Linear(10).
Keras defaults where PyTorch's differ: BatchNorm momentum 0.99 / epsilon 1e-3
(PyTorch momentum=0.01, eps=1e-3), convolutions without bias, He-normal kernels
(Keras he_normal: truncated normal, stddev sqrt(2 / fan_in)), a Glorot-uniform dense layer.
'same' padding with stride 2 on an even size pads Keras-style (0 before, 1 after), which
differs from PyTorch's symmetric padding=1: we pad explicitly so both see the same pixels.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (16, 32, 64)
BLOCKS = 3
DROPOUT = 0.2


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's 'same' padding: total padding k - s (for even sizes), the extra pixel after."""

    def __init__(self, cin, cout, k, stride):
        super().__init__(cin, cout, k, stride=stride, padding=0, bias=False)
        total = max(k - stride, 0)
        self.pads = (total // 2, total - total // 2, total // 2, total - total // 2)  # left, right, top, bottom
        fan_in = cin * k * k
        with torch.no_grad():
            nn.init.trunc_normal_(self.weight, std=math.sqrt(2.0 / fan_in) / 0.87962566103423978,
                                  a=-2 * math.sqrt(2.0 / fan_in) / 0.87962566103423978,
                                  b=2 * math.sqrt(2.0 / fan_in) / 0.87962566103423978)

    def forward(self, x):
        return super().forward(F.pad(x, self.pads) if any(self.pads) else x)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = SameConv(cin, cout, 3, stride), bn(cout)
        self.conv2, self.bn2 = SameConv(cout, cout, 3, 1), bn(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(SameConv(cin, cout, 1, stride), bn(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    def __init__(self, widths=WIDTHS, blocks=BLOCKS, dropout=DROPOUT):
        super().__init__()
        self.stem = nn.Sequential(SameConv(3, widths[0], 3, 1), bn(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for s, w in enumerate(widths):
            for b in range(blocks):
                layers.append(Block(cin, w, 2 if s > 0 and b == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, 10)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(self.drop(x.mean(dim=(2, 3))))


def resnet():
    return ResNet()


def count_flops(model, hw=32):
    """Forward FLOPs per image: 2 per multiply-add in convolutions and dense layers (+1 per
    output for a bias), counted with hooks; elementwise work (BN, ReLU, add, pooling) apart."""
    mm = [0]
    other = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        mm[0] += 2 * out[0].numel() * m.in_channels * k + (out[0].numel() if m.bias is not None else 0)

    def lin_hook(m, inp, out):
        mm[0] += 2 * m.in_features * m.out_features + m.out_features

    def elem_hook(m, inp, out):
        other[0] += (2 if isinstance(m, nn.BatchNorm2d) else 1) * out[0].numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
        elif isinstance(m, (nn.BatchNorm2d, nn.ReLU)):
            hooks.append(m.register_forward_hook(elem_hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, hw, hw))
    model.train(was)
    for h in hooks:
        h.remove()
    return mm[0], other[0]
