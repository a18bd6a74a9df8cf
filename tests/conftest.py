import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    """Each test starts from the same seed on one thread: reproducible and kind to 2-core CI."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
