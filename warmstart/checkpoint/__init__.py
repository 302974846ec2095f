"""Checkpoints in transformers' layout: key maps as data (framework-free), and the PyTorch wing's weight I/O and
from_pretrained / save_pretrained. Submodules are imported by name; only ``keymaps`` and ``arrays`` are torch-free.
"""
