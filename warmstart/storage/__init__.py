"""Checkpoint folders without a framework: the one resolver (folder, hub cache, downloads), atomic folder saves,
weight file names and layouts, and the JSON reader. Nothing here imports torch, TensorFlow or JAX.

Submodules are imported by name (``warmstart.storage.hub`` pulls in huggingface_hub; the rest is cheap).
"""
