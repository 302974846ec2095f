"""Every Hugging Face checkpoint key string lives here.

A key map is a list of declarative rules between our parameter names and transformers' names; ``*`` stands for
one dotted path segment (a layer index, ``weight``/``bias``) and is carried across in order. A rule with several
HF names fuses them along dim 0 (q/k/v into one ``qkv`` projection); ``transpose`` marks GPT-2's Conv1D weights,
stored (in, out). The inverse direction (saving) is derived from the same rules, never written twice.
Names no rule mentions pass through unchanged and are then checked against the model like any other key, except
those a map lists under ``ignore``: buffers older transformers versions saved (position_ids, GPT-2's causal-mask
``attn.bias``) that carry no weights and are dropped quietly, as transformers does.

The maps are framework-free: applying one to a dict of arrays uses the three verbs of ``arrays.ArrayOps``
(transpose, join, split) for the arrays' framework, so the PyTorch, TF and Flax wings share every key string here.
Our names are the PyTorch wing's parameter names; a wing with another layout (Keras kernels stored (in, out),
nested Flax paths) adapts its own names to these, never the HF strings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .arrays import ArrayOps, ops_for

__all__ = ["Rule", "KeyMap", "KEYMAPS", "normalize_legacy_names", "FLAX_EMBEDDING_MODULES", "FLAX_BACKBONE_ROOTS",
           "FLAX_TIED_OUTPUTS", "FLAX_BIAS_ALIASES", "FLAX_NEW_WEIGHTS_OK", "TF_BACKBONE_ROOTS",
           "TF_TIED_OUTPUTS", "TF_BIAS_ALIASES", "TF_SCOPE_SEPARATOR", "TF_LIST_SEPARATOR", "TF_NEW_WEIGHTS_OK",
           "TF_SHARED_LAYERS", "TF1_OPTIMIZER_PARTS", "TF1_HEAD_NAMES", "TF1_LEAVES", "TF1_EMBEDDING_SUFFIX",
           "TF1_SEQ2SEQ_ROOTS", "TF1_SEQ2SEQ_DECODER", "TF1_SEQ2SEQ_SCOPES", "TF1_BACKBONE", "TF1_NORM_SCOPE",
           "TF1_TIED_OUTPUTS", "TF1_OUTPUT_LAYERS"]


@dataclass(frozen=True)
class Rule:
    ours: str
    theirs: tuple[str, ...]
    transpose: bool = False
    # Older checkpoints store the same tensor under other names too (read, never written).
    aliases: tuple[str, ...] = ()


def _rule(ours: str, *theirs: str, transpose: bool = False, aliases: tuple[str, ...] = ()) -> Rule:
    return Rule(ours, tuple(theirs), transpose, aliases)


def _regex(pattern: str) -> re.Pattern:
    return re.compile("^" + re.escape(pattern).replace(r"\*", r"([^.]+)") + "$")


def _fill(pattern: str, parts: tuple[str, ...]) -> str:
    for p in parts:
        pattern = pattern.replace("*", p, 1)
    return pattern


@dataclass
class KeyMap:
    """Rules for the backbone (relative to its prefix) and for the task heads (absolute names)."""

    prefix: str  # the attribute holding the backbone in head models, identical on both sides ("bert")
    base: list[Rule]
    heads: list[Rule] = field(default_factory=list)
    ignore: tuple[str, ...] = ()  # HF names (patterns, relative to the backbone) read and thrown away

    def __post_init__(self):
        self._ignore = [_regex(p) for p in self.ignore]
        self._compiled = {
            scope: [(r, _regex(r.ours), [_regex(t) for t in r.theirs], [_regex(a) for a in r.aliases]) for r in rules]
            for scope, rules in (("base", self.base), ("heads", self.heads))
        }

    # ---- HF -> ours ------------------------------------------------------------------------------------------
    def to_ours(self, theirs: dict[str, Any], *, model_has_prefix: bool, ops: ArrayOps | None = None
                ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        """Map an HF state dict onto our names.

        Returns (tensors by our name, our name -> the HF name it came from, HF keys of incomplete fused groups).
        ``model_has_prefix``: the target is a head model whose backbone sits under ``self.prefix``.
        ``ops``: the array verbs (default: those of the arrays' framework).
        """
        ops = ops or ops_for(theirs)
        pre = self.prefix + "." if model_has_prefix else ""
        out: dict[str, Any] = {}
        origin: dict[str, str] = {}  # reports name the key as the checkpoint spells it, before prefix alignment
        groups: dict[str, dict[int, tuple[str, Any]]] = {}
        group_rule: dict[str, Rule] = {}
        for key, (source, tensor) in self._aligned(theirs, model_has_prefix).items():
            scope, rel = ("base", key[len(pre):]) if key.startswith(pre) or not pre else ("heads", key)
            if scope == "base" and any(rx.match(rel) for rx in self._ignore):
                continue
            hit = self._match_theirs(scope, rel)
            if hit is None:
                if key not in out:  # a rule-mapped name wins over a same-named passthrough
                    out[key], origin[key] = tensor, source
                continue
            rule, slot, parts, is_alias = hit
            ours = (pre if scope == "base" else "") + _fill(rule.ours, parts)
            if len(rule.theirs) == 1:
                if is_alias and ours in out:
                    continue  # the canonical name was already read
                out[ours] = ops.transpose(tensor) if rule.transpose else tensor
                origin[ours] = source
            else:
                groups.setdefault(ours, {})[slot] = (source, tensor)
                group_rule[ours] = rule
        incomplete: list[str] = []
        for ours, got in groups.items():
            rule = group_rule[ours]
            if len(got) != len(rule.theirs):
                incomplete.extend(k for k, _ in got.values())
                continue
            pieces = [ops.transpose(got[i][1]) if rule.transpose else got[i][1] for i in range(len(rule.theirs))]
            out[ours] = ops.concat(pieces)
            origin[ours] = got[0][0]
        return out, origin, incomplete

    def _match_theirs(self, scope: str, key: str):
        for rule, _, theirs_res, alias_res in self._compiled[scope]:
            for slot, rx in enumerate(theirs_res):
                m = rx.match(key)
                if m:
                    return rule, slot, m.groups(), False
            for rx in alias_res:
                m = rx.match(key)
                if m:
                    return rule, 0, m.groups(), True
        return None

    def _aligned(self, theirs: dict[str, Any], model_has_prefix: bool) -> dict[str, tuple[str, Any]]:
        """aligned name -> (name in the checkpoint, tensor)."""
        pre = self.prefix + "."
        has = any(k.startswith(pre) for k in theirs)
        if model_has_prefix and not has:
            # A bare-backbone checkpoint: every key that is not a head key belongs under the prefix.
            return {(k if self._match_theirs("heads", k) else pre + k): (k, v) for k, v in theirs.items()}
        if not model_has_prefix and has:
            # A head-model checkpoint loaded as the bare backbone: keep the backbone part; head keys stay as they
            # are and will be reported unused.
            return {(k[len(pre):] if k.startswith(pre) else k): (k, v) for k, v in theirs.items()}
        return {k: (k, v) for k, v in theirs.items()}

    # ---- ours -> HF ------------------------------------------------------------------------------------------
    def to_theirs(self, ours: dict[str, Any], *, model_has_prefix: bool, ops: ArrayOps | None = None
                  ) -> dict[str, Any]:
        """Our names -> transformers' (fused projections split, Conv1D weights transposed back)."""
        ops = ops or ops_for(ours)
        out: dict[str, Any] = {}
        for key, tensor in ours.items():
            names, rule = self._theirs_names(key, model_has_prefix)
            pieces = ops.split(tensor, len(names)) if len(names) > 1 else (tensor,)
            for name, piece in zip(names, pieces):
                out[name] = ops.finish(ops.transpose(piece) if rule is not None and rule.transpose else piece)
        return out

    def theirs_names(self, our_key: str, *, model_has_prefix: bool) -> list[str]:
        """Every HF name one of our parameters is stored under (q, k and v for a fused projection)."""
        return self._theirs_names(our_key, model_has_prefix)[0]

    def _theirs_names(self, key: str, model_has_prefix: bool) -> tuple[list[str], Rule | None]:
        pre = self.prefix + "." if model_has_prefix else ""
        scope, rel = ("base", key[len(pre):]) if key.startswith(pre) or not pre else ("heads", key)
        for rule, ours_re, _, _ in self._compiled[scope]:
            m = ours_re.match(rel)
            if m:
                lead = pre if scope == "base" else ""
                return [lead + _fill(t, m.groups()) for t in rule.theirs], rule
        return [key], None


def normalize_legacy_names(state: dict[str, Any]) -> dict[str, Any]:
    """TF-era checkpoints name LayerNorm parameters gamma/beta; transformers renames them weight/bias on load."""
    out = {}
    for key, value in state.items():
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        out[key] = value
    return out


# ---- BERT ------------------------------------------------------------------------------------------------------
_L = "encoder.layer.*"
_BERT_LAYER = [
    _rule(f"{_L}.attn.qkv.*", f"{_L}.attention.self.query.*", f"{_L}.attention.self.key.*",
          f"{_L}.attention.self.value.*"),
    _rule(f"{_L}.attn.distance_embedding.weight", f"{_L}.attention.self.distance_embedding.weight"),
    _rule(f"{_L}.attn.out.*", f"{_L}.attention.output.dense.*"),
    _rule(f"{_L}.attn_norm.*", f"{_L}.attention.output.LayerNorm.*"),
    _rule(f"{_L}.cross_attn.q.*", f"{_L}.crossattention.self.query.*"),
    _rule(f"{_L}.cross_attn.kv.*", f"{_L}.crossattention.self.key.*", f"{_L}.crossattention.self.value.*"),
    _rule(f"{_L}.cross_attn.out.*", f"{_L}.crossattention.output.dense.*"),
    _rule(f"{_L}.cross_norm.*", f"{_L}.crossattention.output.LayerNorm.*"),
    _rule(f"{_L}.mlp.fc_in.*", f"{_L}.intermediate.dense.*"),
    _rule(f"{_L}.mlp.fc_out.*", f"{_L}.output.dense.*"),
    _rule(f"{_L}.mlp_norm.*", f"{_L}.output.LayerNorm.*"),
]
# Buffers of older checkpoints (not weights): transformers drops them on load.
_BERT_IGNORE = ("embeddings.position_ids", "embeddings.token_type_ids")
_BERT_BASE = [_rule("embeddings.norm.*", "embeddings.LayerNorm.*"), *_BERT_LAYER]
BERT = KeyMap(
    prefix="bert",
    base=_BERT_BASE,
    heads=[
        _rule("cls.dense.*", "cls.predictions.transform.dense.*"),
        _rule("cls.norm.*", "cls.predictions.transform.LayerNorm.*"),
        _rule("cls.decoder.weight", "cls.predictions.decoder.weight"),
        _rule("cls.decoder.bias", "cls.predictions.bias", aliases=("cls.predictions.decoder.bias",)),
        _rule("seq_relationship.*", "cls.seq_relationship.*"),
    ],
    ignore=_BERT_IGNORE,
)

# ---- BertGeneration: BERT's layers under "bert.", a bare projection head ("lm_head.bias" is its bias) ----------
BERT_GENERATION = KeyMap(
    prefix="bert",
    base=_BERT_BASE,
    heads=[
        _rule("lm_head.decoder.weight", "lm_head.decoder.weight"),
        _rule("lm_head.decoder.bias", "lm_head.bias", aliases=("lm_head.decoder.bias",)),
    ],
    ignore=_BERT_IGNORE,
)

# ---- RoBERTa: BERT's layers under "roberta.", BERT's MLM transform under other names ---------------------------
ROBERTA = KeyMap(
    prefix="roberta",
    base=_BERT_BASE,
    heads=[
        _rule("lm_head.dense.*", "lm_head.dense.*"),
        _rule("lm_head.norm.*", "lm_head.layer_norm.*"),
        _rule("lm_head.decoder.weight", "lm_head.decoder.weight"),
        _rule("lm_head.decoder.bias", "lm_head.bias", aliases=("lm_head.decoder.bias",)),
    ],
    ignore=_BERT_IGNORE,
)


# ---- GPT-2: Conv1D stores weights (in, out), so every projection weight is transposed ----------------------------
def _conv(ours: str, *theirs: str) -> list[Rule]:
    """A Conv1D projection: the weight transposed (and fused along our output dim), the bias as is."""
    return [_rule(f"{ours}.weight", *(f"{t}.weight" for t in theirs), transpose=True),
            _rule(f"{ours}.bias", *(f"{t}.bias" for t in theirs))]


_H, _G = "h.*", "encoder.layer.*"
GPT2 = KeyMap(
    prefix="transformer",
    base=[
        _rule("embeddings.word_embeddings.weight", "wte.weight"),
        _rule("embeddings.position_embeddings.weight", "wpe.weight"),
        _rule(f"{_G}.attn_norm.*", f"{_H}.ln_1.*"),
        *_conv(f"{_G}.attn.qkv", f"{_H}.attn.c_attn"),
        *_conv(f"{_G}.attn.out", f"{_H}.attn.c_proj"),
        _rule(f"{_G}.cross_norm.*", f"{_H}.ln_cross_attn.*"),
        *_conv(f"{_G}.cross_attn.q", f"{_H}.crossattention.q_attn"),
        *_conv(f"{_G}.cross_attn.kv", f"{_H}.crossattention.c_attn"),
        *_conv(f"{_G}.cross_attn.out", f"{_H}.crossattention.c_proj"),
        _rule(f"{_G}.mlp_norm.*", f"{_H}.ln_2.*"),
        *_conv(f"{_G}.mlp.fc_in", f"{_H}.mlp.c_fc"),
        *_conv(f"{_G}.mlp.fc_out", f"{_H}.mlp.c_proj"),
        _rule("ln_f.*", "ln_f.*"),
    ],
    heads=[_rule("lm_head.weight", "lm_head.weight")],
    # The causal-mask buffers v2-v4 checkpoints stored with every attention layer.
    ignore=(f"{_H}.attn.bias", f"{_H}.attn.masked_bias", f"{_H}.crossattention.bias",
            f"{_H}.crossattention.masked_bias"),
)

KEYMAPS: dict[str, KeyMap] = {"bert": BERT, "bert-generation": BERT_GENERATION, "roberta": ROBERTA, "gpt2": GPT2}


# ---- Flax trees (v4 layout; rules in flax_layout.py) ------------------------------------------------------------
# HF module names whose ``weight`` is an embedding table: Flax calls it ``embedding`` and keeps it (vocab, dim);
# every other 2-D ``weight`` is a Linear/Conv1D kernel and is transposed.
FLAX_EMBEDDING_MODULES = ("word_embeddings", "position_embeddings", "token_type_embeddings", "distance_embedding",
                          "wte", "wpe")
# Top-level HF modules of each backbone, by its prefix: a bare-backbone key starts with one of these.
FLAX_BACKBONE_ROOTS = {"bert": ("embeddings", "encoder", "pooler"), "roberta": ("embeddings", "encoder", "pooler"),
                       "transformer": ("wte", "wpe", "h", "ln_f")}
# Output projections that tie to the word embeddings, by backbone prefix: (projection weight, embedding weight).
# A Flax tree of a tied model has no kernel for them (the head multiplies by the embedding table).
FLAX_TIED_OUTPUTS = {
    "bert": (("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),
             ("lm_head.decoder.weight", "bert.embeddings.word_embeddings.weight")),
    "roberta": (("lm_head.decoder.weight", "roberta.embeddings.word_embeddings.weight"),),
    "transformer": (("lm_head.weight", "transformer.wte.weight"),),
}
# Second names of a head bias in PyTorch state dicts (the same tensor as the first): (alias, canonical).
FLAX_BIAS_ALIASES = (("cls.predictions.decoder.bias", "cls.predictions.bias"),
                     ("lm_head.decoder.bias", "lm_head.bias"))
# Backbone parameters (paths under the prefix, "*" one or more components) a checkpoint may lack: a warm-started
# model initialises them fresh and reports them (pooler, cross-attention), as the PyTorch models' new_weights_ok.
# Everything outside the backbone is a task head and may always be new.
FLAX_NEW_WEIGHTS_OK = {
    "bert": ("pooler/*", "encoder/layer/*/crossattention/*"),
    "roberta": ("pooler/*", "encoder/layer/*/crossattention/*"),
    "transformer": ("h/*/crossattention/*", "h/*/ln_cross_attn/*"),
}

# ---- TF / Keras (v4 tf_model.h5 names; rules in tf_layout.py) ---------------------------------------------------
# v4's TF models reuse PyTorch's module names (``/`` for ``.``, ``layer_._0`` for ``layer.0``), so the backbone
# roots, tied projections and bias aliases are the Flax tables, seen from the TF side under their own names.
TF_BACKBONE_ROOTS = FLAX_BACKBONE_ROOTS
TF_TIED_OUTPUTS = FLAX_TIED_OUTPUTS
TF_BIAS_ALIASES = FLAX_BIAS_ALIASES
# v4 scopes some heads twice over (``mlm___cls`` is PyTorch's ``cls``): the TF component before ``___`` exists only
# to keep Keras layer names unique; TF -> PyTorch drops it.
TF_SCOPE_SEPARATOR = "___"
# A Keras list element ``layer_._3`` is PyTorch's ``layer.3``.
TF_LIST_SEPARATOR = "_._"
# TF weight names a checkpoint may lack (fnmatch patterns over names relative to the model), as FLAX_NEW_WEIGHTS_OK.
TF_NEW_WEIGHTS_OK = {
    "bert": ("bert/pooler/*", "bert/encoder/layer_._*/crossattention/*"),
    "roberta": ("roberta/pooler/*", "roberta/encoder/layer_._*/crossattention/*"),
    "transformer": ("transformer/h_._*/crossattention/*", "transformer/h_._*/ln_cross_attn/*"),
}
# v4 heads that hold the backbone's embeddings layer (tied output projection): Keras 2 lists every weight of that
# layer again under the head's group in tf_model.h5. (head layer, the backbone sub-tree it holds).
TF_SHARED_LAYERS = (("mlm___cls", "bert/embeddings"), ("lm_head", "roberta/embeddings"))

# ---- TF1 checkpoints (google-research/bert and TF-Hub bertseq2seq bundles; rules in tf1_layout.py) ---------------
# Name components of optimizer state and counters (AdamWeightDecayOptimizer's adam_m / adam_v slots, tf.train's
# Adam / Adam_1 slots and beta powers, LAMB's, the step counter): read past and reported, never weights.
TF1_OPTIMIZER_PARTS = ("adam_m", "adam_v", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "Adam",
                       "Adam_1", "beta1_power", "beta2_power", "lamb_m", "lamb_v", "global_step", "good_steps",
                       "loss_scale", "current_loss_scale")
# Whole names whose place depends on the head, which v4's generic walk got wrong (transformers #1619, #2061, #676):
# run_classifier.py's top-level output layer is the classifier, run_squad.py's cls/squad is the QA head.
TF1_HEAD_NAMES = {
    "output_weights": "classifier.weight",
    "output_bias": "classifier.bias",
    "cls/squad/output_weights": "qa_outputs.weight",
    "cls/squad/output_bias": "qa_outputs.bias",
    "cls/predictions/output_bias": "cls.predictions.bias",
}
# Leaf names -> PyTorch's, and whether the array is transposed (TF1 Dense kernels are (in, out); the hand-made
# output_weights of google's heads are already (out, in)).
TF1_LEAVES = {"kernel": ("weight", True), "gamma": ("weight", False), "beta": ("bias", False),
              "output_weights": ("weight", False), "output_bias": ("bias", False)}
# A leaf ``*_embeddings`` is an embedding table: PyTorch names its ``weight``.
TF1_EMBEDDING_SUFFIX = "_embeddings"
# bertseq2seq bundles: the backbone's top-level scopes (anything before the first is the module's own scope, which
# v4 dropped as two fixed levels), the decoder's stack, and its cross-attention scopes -> BERT's.
TF1_SEQ2SEQ_ROOTS = ("embeddings", "encoder", "decoder")
TF1_SEQ2SEQ_DECODER = "decoder"
TF1_SEQ2SEQ_SCOPES = {"attention/encdec_output": "crossattention/output", "attention/encdec": "crossattention/self"}
# The backbone scope google-research names its BERT under, which the PyTorch head models share.
TF1_BACKBONE = "bert"
# google's LayerNorm scope (its gamma / beta are PyTorch's weight / bias), and the PyTorch keys google's heads have
# no tensor for (the MLM decoder multiplies by the embedding table; its bias is cls/predictions/output_bias).
TF1_NORM_SCOPE = "LayerNorm"
TF1_TIED_OUTPUTS = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
# Layers google wrote by hand as output_weights (already (out, in)) / output_bias rather than as a Dense kernel.
TF1_OUTPUT_LAYERS = ("cls/seq_relationship",)
