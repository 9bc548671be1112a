"""One real kernel per test module for the notebook-behaviour tests."""

from __future__ import annotations

import pytest

from kernels import Kernel


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    try:
        yield k
    finally:
        k.client.stop_channels()
        k.manager.shutdown_kernel(now=False)
