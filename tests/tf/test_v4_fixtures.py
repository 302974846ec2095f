"""Our TF models against transformers 4.57.1's own files (tests/assets/tf_v4/, see its README).

Every case folder: v4's tf_model.h5 loads into the class named in tree.json and gives every output field, the
loss and (decoders) the cached decoding v4 recorded; saving it back gives v4's file byte for byte; a fresh model
carries v4's weight names and writes v4's h5 structure. Extras: v4's shards both ways, PyTorch-named safetensors
from v4's TF -> PyTorch conversion (in and out) and v4's PyTorch -> TF load of a PyTorch BertModel.
"""
from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

import warmstart.tf as wtf  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "tf_v4"
SEQ2SEQ_CASES = ("bert2bert", "bert2gpt2")  # TFEncoderDecoderModel: test_v4_seq2seq.py
CASES = sorted(p.name for p in ASSETS.iterdir() if (p / "tree.json").is_file() and p.name not in SEQ2SEQ_CASES)


def _expected_keys(case: str) -> set[str]:
    with safe_open(str(ASSETS / case / "expected.safetensors"), "np") as f:
        return set(f.keys())


_KEYS = {case: _expected_keys(case) for case in CASES}
ATOL = 1e-5
PREFIX = 4  # v4's prefill length before the token-by-token decoding (make_tf_fixtures.PREFIX)
ROBERTA_PAD = 1


def test_every_case_is_here():
    assert len(CASES) == 14, CASES


# ---- one load per case for the whole module --------------------------------------------------------------------
_CACHE: dict[str, tuple] = {}


def _case(case: str):
    """(tree, expected arrays, the loaded model), loaded once per module."""
    if case not in _CACHE:
        folder = ASSETS / case
        tree = json.loads((folder / "tree.json").read_text())
        expected = load_file(str(folder / "expected.safetensors"))
        model = getattr(wtf, tree["model_class"]).from_pretrained(folder)
        _CACHE[case] = (tree, expected, model)
    return _CACHE[case]


def _inputs(tree, expected) -> dict:
    return {k[len("inputs."):]: v for k, v in expected.items()
            if k.startswith("inputs.") and k[len("inputs."):] not in tree["label_inputs"]}


def _field(out, key: str):
    parts = key.split(".")[1:]
    value = getattr(out, parts[0])
    for p in parts[1:]:
        value = value[int(p)]
    return np.asarray(value)


def _close(got, want, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, v4 {want.shape}"
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert err <= ATOL, f"{what}: max abs difference {err:.3g} from v4"


def _check_outputs(model, tree, expected, where: str) -> None:
    out = model(_inputs(tree, expected), output_hidden_states=True, output_attentions=True, training=False)
    keys = [k for k in expected if k.startswith("outputs.") and k not in ("outputs.loss", "outputs.cached_logits")]
    assert keys
    fields = {k.split(".")[1] for k in keys}
    assert fields <= set(tree["output_fields"]) and set(tree["output_fields"]) <= fields | {"loss"}
    for key in keys:
        _close(_field(out, key), expected[key], f"{where}: {key}")
    # every v4 tuple entry is there, and no extra one (e.g. one hidden state too many)
    for field in fields:
        value = getattr(out, field)
        if isinstance(value, (tuple, list)):
            n = len({k.split(".")[2] for k in keys if k.split(".")[1] == field})
            assert len(value) == n, f"{where}: {field} has {len(value)} entries, v4 {n}"


# ---- h5 structure, as make_tf_fixtures.py records it -----------------------------------------------------------
def _attr(obj, name):
    value = obj.attrs[name]
    dtype = obj.attrs.get_id(name).dtype
    info = h5py.check_string_dtype(dtype)
    kind = ({"h5_type": "string", "length": info.length, "encoding": info.encoding} if info is not None
            else {"h5_type": str(dtype)})
    shape = list(np.shape(value))
    if isinstance(value, np.ndarray):
        value = [v.decode("utf8") if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                 for v in value.reshape(-1)]
    elif isinstance(value, bytes):
        value = value.decode("utf8")
    return {"value": value, "shape": shape, **kind}


def _dataset(dset):
    return {"shape": list(dset.shape), "dtype": str(dset.dtype), "chunks": dset.chunks,
            "compression": dset.compression, "fillvalue": dset.fillvalue.item()}


def _h5_single(path):
    with h5py.File(path, "r") as f:
        root = {name: _attr(f, name) for name in sorted(f.attrs)}
        groups, datasets = {}, {}
        layer_names = [n.decode("utf8") if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        for layer in layer_names + [g for g in f if g not in layer_names]:
            group = f[layer]
            groups[layer] = {name: _attr(group, name) for name in sorted(group.attrs)}
            for weight in groups[layer].get("weight_names", {}).get("value", []):
                datasets[f"{layer}/{weight}"] = _dataset(group[weight])
        every = []
        f.visititems(lambda n, o: every.append(n) if isinstance(o, h5py.Dataset) else None)
        assert set(every) == set(datasets), f"{path}: datasets outside weight_names"
    return {"root_attrs": root, "groups": groups, "datasets": datasets}


def _h5_flat(path):
    with h5py.File(path, "r") as f:
        root = {name: _attr(f, name) for name in sorted(f.attrs)}
        datasets, group_attrs = {}, {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets[name] = _dataset(obj)
            elif len(obj.attrs):
                group_attrs[name] = {a: _attr(obj, a) for a in sorted(obj.attrs)}
        f.visititems(visit)
    return {"root_attrs": root, "group_attrs": group_attrs, "datasets": datasets}


def _dropout_free(names):
    """v4's head Dropout (weightless, named by a Keras session counter): set aside where only weights matter."""
    return [n for n in names if not n.startswith("dropout")]


# ---- every case ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_outputs_match_v4(case):
    tree, expected, model = _case(case)
    assert type(model).__name__ == tree["model_class"]
    _check_outputs(model, tree, expected, case)


@pytest.mark.parametrize("case", [c for c in CASES if "outputs.loss" in _KEYS[c]])
def test_loss_matches_v4(case):
    tree, expected, model = _case(case)
    labels = {name: expected[f"inputs.{name}"] for name in tree["label_inputs"]}
    assert labels
    out = model(_inputs(tree, expected), **labels, training=False)
    want = expected["outputs.loss"]
    assert want.shape in ((1,), (2,))
    _close(np.asarray(out.loss), want, f"{case}: loss")


def _position_ids(case, ids):
    if case.startswith("roberta"):
        real = (ids != ROBERTA_PAD).astype(np.int32)
        return (np.cumsum(real, axis=-1) * real + ROBERTA_PAD).astype(np.int32)
    return np.broadcast_to(np.arange(ids.shape[-1], dtype=np.int32), ids.shape).copy()


@pytest.mark.parametrize("case", [c for c in CASES if "outputs.cached_logits" in _KEYS[c]])
def test_cached_decoding_matches_v4(case):
    """v4's recipe: PREFIX tokens in one call, then one token at a time with past_key_values, the mask over past +
    new tokens and the full forward's position ids sliced to the new ones."""
    tree, expected, model = _case(case)
    inputs = _inputs(tree, expected)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    positions = _position_ids(case, ids)
    extra = {k: inputs[k] for k in ("encoder_hidden_states", "encoder_attention_mask")}
    steps, past, start = [], None, 0
    seq = ids.shape[1]
    for stop in [PREFIX] + list(range(PREFIX + 1, seq + 1)):
        step = dict(extra, input_ids=ids[:, start:stop], attention_mask=mask[:, :stop],
                    position_ids=positions[:, start:stop])
        if "token_type_ids" in inputs:
            step["token_type_ids"] = inputs["token_type_ids"][:, start:stop]
        out = model(step, past_key_values=past, use_cache=True, training=False)
        steps.append(np.asarray(out.logits))
        past, start = out.past_key_values, stop
    _close(np.concatenate(steps, axis=1), expected["outputs.cached_logits"], f"{case}: cached logits")


@pytest.mark.parametrize("case", CASES)
def test_save_gives_v4_file_back_byte_for_byte(case, tmp_path):
    _, _, model = _case(case)
    model.save_pretrained(tmp_path)
    assert filecmp.cmp(tmp_path / "tf_model.h5", ASSETS / case / "tf_model.h5", shallow=False), \
        f"{case}: our tf_model.h5 differs from v4's"
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [type(model).__name__[2:]]


_FRESH: dict[str, tuple] = {}


def _fresh_h5(case: str, folder: Path):
    """A fresh model of the case's class (from its config alone) and the structure of the tf_model.h5 it writes
    (built once per case for the module)."""
    if case not in _FRESH:
        tree, _, _ = _case(case)
        cls = getattr(wtf, tree["model_class"])
        fresh = cls(cls.config_class.from_pretrained(ASSETS / case))
        fresh.save_pretrained(folder)
        _FRESH[case] = (tree, fresh, _h5_single(folder / "tf_model.h5"))
    return _FRESH[case]


def _names(group) -> list[str]:
    return group.get("weight_names", {}).get("value", [])


@pytest.mark.parametrize("case", CASES)
def test_fresh_model_has_v4_names_and_h5_structure(case, tmp_path):
    """Names, shapes, layer groups, attribute types and dataset storage of a fresh model's file equal v4's (the
    order of weight_names is checked by the next test)."""
    tree, fresh, ours = _fresh_h5(case, tmp_path)
    prefix = tree["model_name"] + "/"
    want = {}
    for full, meta in tree["model_weights"].items():
        assert full.startswith(prefix) and full.endswith(":0")
        want[full[len(prefix):-2]] = tuple(meta["shape"])
    got = {name: tuple(var.shape) for name, var in fresh.named_weights().items()}
    assert got == want
    assert fresh.name == tree["model_name"]

    v4 = tree["h5"]
    for attr in ("backend", "keras_version"):
        assert ours["root_attrs"][attr] == v4["root_attrs"][attr]
    ours_layers, v4_layers = ours["root_attrs"]["layer_names"], v4["root_attrs"]["layer_names"]
    assert {k: v for k, v in ours_layers.items() if k not in ("value", "shape")} == \
        {k: v for k, v in v4_layers.items() if k not in ("value", "shape")}
    # the head's Dropout under the name a fresh Keras 2 session gives it (dropout_4 for one layer), as v4's fixture
    assert ours_layers["value"] == v4_layers["value"]
    assert list(ours["groups"]) == list(v4["groups"])  # + top_level_model_weights, last
    for layer in v4["groups"]:
        a, b = ours["groups"][layer], v4["groups"][layer]
        assert sorted(_names(a)) == sorted(_names(b)), f"{case}: weight_names of {layer}"
        assert {k: v for k, v in a.get("weight_names", {}).items() if k != "value"} == \
            {k: v for k, v in b.get("weight_names", {}).items() if k != "value"}, f"{case}: {layer} attr type"
        if not _names(b):  # weightless (the Dropout, top_level_model_weights): an empty float64 array, as v4
            assert a == b, f"{case}: {layer}"
    assert ours["datasets"] == v4["datasets"]



@pytest.mark.parametrize("case", CASES)
def test_fresh_model_weight_order_is_v4s(case, tmp_path):
    tree, fresh, ours = _fresh_h5(case, tmp_path)
    v4 = tree["h5"]
    for layer in _dropout_free(v4["groups"]):
        assert _names(ours["groups"][layer]) == _names(v4["groups"][layer]), f"{case}: order in {layer}"
    assert list(ours["datasets"]) == [k for k in v4["datasets"] if not k.startswith("dropout")]
    prefix = len(tree["model_name"]) + 1
    assert list(fresh.named_weights()) == [k[prefix:-2] for k in tree["model_weights"]]


# ---- sharded ---------------------------------------------------------------------------------------------------
SHARDED = ASSETS / "bert_sequence_classification" / "sharded"


def test_sharded_v4_checkpoint_loads_same_weights():
    _, _, single = _case("bert_sequence_classification")
    model = wtf.TFBertForSequenceClassification.from_pretrained(SHARDED)
    a, b = single.named_weights(), model.named_weights()
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name].numpy(), b[name].numpy(), err_msg=name)


def test_sharded_save_writes_v4_layout_and_loads_back(tmp_path):
    tree = json.loads((SHARDED / "tree.json").read_text())
    _, expected, single = _case("bert_sequence_classification")
    single.save_pretrained(tmp_path, max_shard_size=tree["max_shard_size"])
    shards = sorted(p.name for p in tmp_path.glob("tf_model-*.h5"))
    v4_shards = sorted(k for k in tree if k.startswith("tf_model-"))
    assert shards == v4_shards
    assert not (tmp_path / "tf_model.h5").exists()
    for shard in shards:
        assert _h5_flat(tmp_path / shard) == tree[shard], shard
        # v4 writes its shards deterministically too: ours are the same bytes
        assert filecmp.cmp(tmp_path / shard, SHARDED / shard, shallow=False), shard
    ours = json.loads((tmp_path / "tf_model.h5.index.json").read_text())
    v4 = json.loads((SHARDED / "tf_model.h5.index.json").read_text())
    assert ours == v4
    back = wtf.TFBertForSequenceClassification.from_pretrained(tmp_path)
    tree_case, _, _ = _case("bert_sequence_classification")
    _check_outputs(back, tree_case, expected, "sharded round trip")


# ---- PyTorch-named safetensors from v4's TF -> PyTorch conversion ------------------------------------------------
PT_CASES = [("bert_masked_lm", "BertForMaskedLM"), ("gpt2_lm_head", "GPT2LMHeadModel")]


def _keys(path) -> set[str]:
    with safe_open(str(path), "np") as f:
        return set(f.keys())


@pytest.mark.parametrize("case,pt_class", PT_CASES)
def test_pytorch_folder_loads_and_gives_v4_outputs(case, pt_class):
    tree, expected, _ = _case(case)
    model = getattr(wtf, tree["model_class"]).from_pretrained(ASSETS / case / "pt")
    _check_outputs(model, tree, expected, f"{case}/pt")


@pytest.mark.parametrize("case,pt_class", PT_CASES)
def test_save_for_pytorch_loads_in_our_pytorch_class(case, pt_class, tmp_path):
    torch = pytest.importorskip("torch")
    import warmstart

    tree, expected, model = _case(case)
    model.save_pretrained(tmp_path, for_pytorch=True)
    assert not (tmp_path / "tf_model.h5").exists()
    with safe_open(str(tmp_path / "model.safetensors"), "np") as f:
        assert f.metadata().get("format") == "pt"
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [pt_class]
    ours, v4 = _keys(tmp_path / "model.safetensors"), _keys(ASSETS / case / "pt" / "model.safetensors")
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "lm_head.weight"}
    assert ours - tied == v4 - tied

    pt = getattr(warmstart, pt_class).from_pretrained(tmp_path).eval()
    backbone = pt.bert if hasattr(pt, "bert") else pt.transformer
    backbone.skip_padding = False
    inputs = {k: torch.from_numpy(v.astype(np.int64) if v.dtype.kind == "i" else v)
              for k, v in _inputs(tree, expected).items()}
    with torch.no_grad():
        logits = pt(**inputs).logits.numpy()
    _close(logits, expected["outputs.logits"], f"{case}: PyTorch logits of our for_pytorch save")


def test_v4_pytorch_bert_model_loads_with_v4_outputs():
    folder = ASSETS / "bert_model" / "from_pt"
    tree = json.loads((folder / "tree.json").read_text())
    expected = load_file(str(folder / "expected.safetensors"))
    if not any(k.startswith("inputs.") for k in expected):  # the inputs are bert_model's
        expected = {**{k: v for k, v in load_file(str(ASSETS / "bert_model" / "expected.safetensors")).items()
                       if k.startswith("inputs.")}, **expected}
    model, info = wtf.TFBertModel.from_pretrained(folder, output_loading_info=True)
    assert info["missing_keys"] == [] and info["mismatched_keys"] == []
    prefix = tree["model_name"] + "/"
    assert sorted(model.named_weights()) == sorted(k[len(prefix):-2] for k in tree["model_weights"])
    _check_outputs(model, tree, expected, "bert_model/from_pt")
