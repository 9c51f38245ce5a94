"""A small smooth network for the method tests, and the float32 rounding of its input gradients."""
import numpy as np
import torch

EPS32 = float(np.finfo(np.float32).eps)


def small_net(inputs: int = 6, outputs: int = 3, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, 16), torch.nn.Tanh(), torch.nn.Linear(16, outputs))


def gradient_rounding(net: torch.nn.Sequential) -> float:
    """Float32 rounding of dF/dx through Linear-Tanh-Linear: each partial derivative sums hidden-unit terms
    |W1[h, i] * W2[t, h]| (tanh' <= 1), bounded by the largest such sum, 16 roundings each."""
    return 16 * EPS32 * float((net[2].weight.abs() @ net[0].weight.abs()).max())
