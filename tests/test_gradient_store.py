"""ig_core.path.gradient_store: gradients written to a temporary file come back bit for bit."""
import pytest
import torch

from ig_core.path.gradient_store import GradientStore


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_tensors_come_back_bit_for_bit_in_any_order(dtype):
    generator = torch.Generator().manual_seed(0)
    store = GradientStore()
    written = {alpha: (torch.randn(2, 1, 3, 5, generator=generator).to(dtype),
                       torch.randn(2, 1, 7, generator=generator).to(dtype)[:, :, ::2])  # not contiguous
               for alpha in (0.0, 0.5, 0.25, 1.0)}
    for alpha, tensors in written.items():
        store.put(alpha, tensors)
    for alpha in (1.0, 0.0, 0.25, 0.5, 0.25):
        for back, original in zip(store.get(alpha), written[alpha]):
            assert back.dtype == original.dtype and back.shape == original.shape
            assert torch.equal(back, original)
    assert 0.25 in store and 0.75 not in store
    assert store.nbytes == sum(t.numel() * t.element_size() for ts in written.values() for t in ts)
    store.close()


def test_an_empty_tensor_and_a_scalar_round_trip():
    store = GradientStore()
    store.put(0.5, (torch.empty(2, 0, 3), torch.tensor(3.5)))
    empty, scalar = store.get(0.5)
    assert empty.shape == (2, 0, 3) and scalar.shape == () and scalar.item() == 3.5
    store.close()
