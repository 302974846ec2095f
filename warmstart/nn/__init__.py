"""The one transformer stack every model family is assembled from."""
from .attention import Attention
from .block import Block, LayerInputs, MLP
from .cache import KVCache
from .embeddings import Embeddings, check_ids
from .heads import LMHead, Pooler
from .stack import BackboneOutput, TransformerStack, additive_mask, backbone_args, run_backbone

__all__ = ["Attention", "Block", "LayerInputs", "MLP", "KVCache", "Embeddings", "check_ids", "LMHead", "Pooler",
           "BackboneOutput", "TransformerStack", "additive_mask", "backbone_args", "run_backbone"]
