"""Opt-in stand-in for CPU matrix-product kernels that round differently per batch shape (`--shape-noise=SALT` or
IG_SHAPE_NOISE=SALT; see conftest.py).

On Intel Xeons with AVX-512, torch's CPU matrix products go through MKL, which picks its kernels by the shapes
involved: the same product in batches of another shape then differs in the last bits (seen: 2.2e-8 on 1e-1). An AMD
machine may never take that path, so a test comparing such results exactly passes there and fails on a Xeon. This
mode makes every float32/float64 matrix product (linear, matmul, tensordot, einsum, convolutions, ...) scale its
result by 1 + s * eps, where s in {-2, -1, 1, 2} is chosen by a hash of the salt, the function and the shapes of its
operands. Gradients are scaled too, since the scaling is part of the autograd graph. So:

- the same computation (same shapes) gets the same s: bit-equal results stay bit-equal;
- products of other batch shapes usually get another s, and so differ in the last bit or two, as on a Xeon: an exact
  comparison of them fails (a hash can give two shapes the same s, one time in four: run with two salts);
- the change is at most 2 eps of |result|, and |result| <= the sum of the |terms| the product adds, so it stays
  inside the rounding bound of any sum of 2 or more terms (n eps of the sum of their magnitudes): a tolerance derived
  from the arithmetic still holds.

It models kernels that differ by shape, not the exact MKL results. Not touched: float16/bfloat16 products, and threads
that do not go through threading.Thread.run (torch function modes are per thread; conftest enters the mode in
Thread.run). A product that is exact in any kernel (one nonzero term, as in the gradient of a linear model's one
target) is scaled all the same: an exact comparison of such a result is right, and fails under the mode.
"""
from __future__ import annotations

import zlib

import torch
from torch.overrides import TorchFunctionMode

_F = torch.nn.functional
PRODUCTS = {
    _F.linear, _F.bilinear, _F.conv1d, _F.conv2d, _F.conv3d, _F.conv_transpose1d, _F.conv_transpose2d,
    _F.conv_transpose3d, torch.matmul, torch.mm, torch.bmm, torch.mv, torch.addmm, torch.addmv, torch.baddbmm,
    torch.tensordot, torch.einsum, torch.inner, torch.Tensor.matmul, torch.Tensor.__matmul__,
    torch.Tensor.__rmatmul__, torch.Tensor.mm, torch.Tensor.bmm, torch.Tensor.mv, torch.Tensor.addmm,
}
STEPS = (-2, -1, 1, 2)  # multiples of eps, none zero: another shape always moves the result


def _shapes(value) -> list:
    if isinstance(value, torch.Tensor):
        return [tuple(value.shape)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _shapes(v)]
    return []


class ShapeNoise(TorchFunctionMode):
    """Scales each matrix product's float result by 1 + s * eps, s a function of (salt, function, operand shapes)."""

    def __init__(self, salt: str):
        super().__init__()
        self.salt = str(salt)
        self.calls = 0  # products scaled, so that a run can show the mode was on

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if (func not in PRODUCTS or kwargs.get("out") is not None or not isinstance(result, torch.Tensor)
                or result.dtype not in (torch.float32, torch.float64)):
            return result
        key = f"{self.salt}|{getattr(func, '__name__', func)}|{_shapes(args)}|{_shapes(list(kwargs.values()))}"
        step = STEPS[zlib.crc32(key.encode()) % len(STEPS)]
        self.calls += 1
        return result * (1 + step * torch.finfo(result.dtype).eps)  # 1 + s eps is exact in the result's dtype
