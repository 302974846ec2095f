"""Flax tests are skipped where jax / flax are not installed."""
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
