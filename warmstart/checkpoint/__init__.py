"""Checkpoints in transformers' layout: key maps, file I/O, from_pretrained / save_pretrained."""
from .hub import resolve_model_dir
from .io import CheckpointError, atomic_save, find_weights, load_state_dict, save_state_dict
from .keymaps import KEYMAPS, KeyMap, Rule
from .pretrained import LoadingError, load_pretrained, save_pretrained

__all__ = ["resolve_model_dir", "CheckpointError", "atomic_save", "find_weights", "load_state_dict",
           "save_state_dict", "KEYMAPS", "KeyMap", "Rule", "LoadingError", "load_pretrained", "save_pretrained"]
