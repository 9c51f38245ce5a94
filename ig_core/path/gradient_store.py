"""Path-point gradients kept off the device and out of memory: the adaptive rule's weights change as it refines,
so it needs every point's gradient again at the end (and for each partial result). Written to an unnamed temporary
file, they cost the operating system's page cache, not the process's memory or the GPU's: memory stays that of one
batch however many points the rule takes.
"""
from __future__ import annotations

import tempfile
from typing import Hashable

import torch


class GradientStore:
    """key (an alpha, or an alpha and an example) -> a tuple of tensors, written once and read any number of
    times."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()  # removed by the system when closed, even after a crash
        self._where: dict[Hashable, list[tuple[int, int, torch.dtype, torch.Size]]] = {}
        self._end = 0

    def put(self, key: Hashable, tensors) -> None:
        placed = []
        self._file.seek(self._end)
        for tensor in tensors:
            data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()  # any dtype, as raw bytes
            self._file.write(data)
            placed.append((self._end, data.nbytes, tensor.dtype, tensor.shape))
            self._end += data.nbytes
        self._where[key] = placed

    def get(self, key: Hashable, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
        tensors = []
        for offset, size, dtype, shape in self._where[key]:
            if size == 0:  # torch.frombuffer refuses an empty buffer
                tensors.append(torch.empty(shape, dtype=dtype, device=device))
                continue
            buffer = bytearray(size)
            self._file.seek(offset)
            self._file.readinto(buffer)
            tensors.append(torch.frombuffer(buffer, dtype=torch.uint8).view(dtype).reshape(shape).to(device))
        return tuple(tensors)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._where

    @property
    def nbytes(self) -> int:
        return self._end

    def close(self) -> None:
        self._file.close()
