"""tf_io: v4's tf_model.h5 (single and sharded) read and written with h5py only; every file checked against the
ones transformers 4.57.1 (tf-keras 2.21) wrote (tests/assets/tf_v4)."""
import json
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from warmstart.checkpoint import tf_io as T  # noqa: E402
from warmstart.storage.files import CheckpointError, CheckpointNotFoundError  # noqa: E402

ROOT = Path(__file__).parent.parent / "assets" / "tf_v4"
CASES = sorted(p.name for p in ROOT.iterdir() if (p / "tf_model.h5").is_file()) if ROOT.is_dir() else []
SEQ = ROOT / "bert_sequence_classification"
needs_fixtures = pytest.mark.skipif(not CASES, reason="tests/assets/tf_v4 fixtures not generated")


def _structure(path):
    """Everything an h5 file says, in creation order: attributes (value and storage type), groups, datasets."""
    out = []

    def attrs(obj):
        items = []
        for key in obj.attrs:
            aid = obj.attrs.get_id(key)
            kind = aid.get_type()
            vlen = kind.is_variable_str() if isinstance(kind, h5py.h5t.TypeStringID) else None
            value = obj.attrs[key]
            items.append((key, type(kind).__name__, vlen, aid.shape, np.asarray(value).tolist()))
        return items

    with h5py.File(path, "r") as f:
        out.append(("/", attrs(f)))

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out.append((name, "dataset", obj.shape, str(obj.dtype), obj[()].tobytes(), attrs(obj)))
            else:
                out.append((name, "group", attrs(obj)))
        f.visititems(visit)
    return out


def _layers(weights, info):
    return [(layer, [(rel, weights[rel]) for rel in names]) for layer, names in info.layers]


# ---- single files ----------------------------------------------------------------------------------------------
@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_v4_file_reads_and_rewrites_byte_identical(case, tmp_path):
    path = ROOT / case / "tf_model.h5"
    weights, info = T.read_tf_h5(path)
    assert not info.sharded and info.backend == T.KERAS_BACKEND and info.keras_version == T.KERAS_VERSION
    assert all("/" in k and not k.endswith(":0") for k in weights)
    T.write_tf_h5(tmp_path / "tf_model.h5", info.model_name, _layers(weights, info))
    assert _structure(tmp_path / "tf_model.h5") == _structure(path)
    assert (tmp_path / "tf_model.h5").read_bytes() == path.read_bytes()


def _described(path):
    """Our file in tree.json's terms (root attributes, groups in layer order, datasets in weight_names order)."""
    def attr(obj, key):
        kind = obj.attrs.get_id(key).get_type()
        value = np.asarray(obj.attrs[key]).tolist()
        if isinstance(kind, h5py.h5t.TypeStringID):
            enc = "ascii" if kind.get_cset() == h5py.h5t.CSET_ASCII else "utf-8"
            return {"value": value, "shape": list(obj.attrs.get_id(key).shape), "h5_type": "string",
                    "length": None if kind.is_variable_str() else kind.get_size(), "encoding": enc}
        return {"value": value, "shape": list(obj.attrs.get_id(key).shape), "h5_type": str(obj.attrs[key].dtype)}

    with h5py.File(path, "r") as f:
        roots = {k: attr(f, k) for k in f.attrs}
        layers = list(f.attrs["layer_names"]) + ["top_level_model_weights"]
        groups = {g: {k: attr(f[g], k) for k in f[g].attrs} for g in layers}
        datasets = {}
        for g in layers:
            for name in f[g].attrs["weight_names"]:
                d = f[g][name]
                datasets[f"{g}/{name}"] = {"shape": list(d.shape), "dtype": str(d.dtype), "chunks": d.chunks,
                                           "compression": d.compression, "fillvalue": float(d.fillvalue)}
    return {"root_attrs": roots, "groups": groups, "datasets": datasets}


@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_our_file_matches_v4s_tree_json(case, tmp_path):
    tree = json.loads((ROOT / case / "tree.json").read_text())
    weights, info = T.read_tf_h5(ROOT / case / "tf_model.h5")
    assert info.model_name == tree["model_name"]
    assert [name for name, _ in info.layers] == tree["model_layers"]
    T.write_tf_h5(tmp_path / "tf_model.h5", tree["model_name"], _layers(weights, info))
    ours = _described(tmp_path / "tf_model.h5")
    assert ours["root_attrs"] == tree["h5"]["root_attrs"]
    assert list(ours["groups"]) == list(tree["h5"]["groups"]) and ours["groups"] == tree["h5"]["groups"]
    assert list(ours["datasets"]) == list(tree["h5"]["datasets"]) and ours["datasets"] == tree["h5"]["datasets"]
    # Every weight of the model is in the file once under its relative name ...
    order = [k.split("/", 1)[1][:-2] for k in tree["model_weights"]]
    assert set(weights) == set(order)
    # ... and the model's weights in model.weights order + its layer names give v4's file byte for byte.
    T.write_tf_h5(tmp_path / "again.h5", tree["model_name"],
                  T.v4_layers([(k, weights[k]) for k in order], tree["model_layers"]))
    assert (tmp_path / "again.h5").read_bytes() == (ROOT / case / "tf_model.h5").read_bytes()


def test_shared_weights_are_read_once_and_written_under_each_layer(tmp_path):
    table = np.arange(6, dtype=np.float32).reshape(3, 2)
    layers = [("bert", [("bert/embeddings/word_embeddings/weight", table)]), ("dropout_7", []),
              ("mlm___cls", [("mlm___cls/predictions/bias", np.zeros(3, np.float32)),
                             ("bert/embeddings/word_embeddings/weight", table)])]
    T.write_tf_h5(tmp_path / "m.h5", "tf_bert_for_masked_lm", layers)
    weights, info = T.read_tf_h5(tmp_path / "m.h5")
    assert list(weights) == ["bert/embeddings/word_embeddings/weight", "mlm___cls/predictions/bias"]
    assert info.layers == [(n, [r for r, _ in w]) for n, w in layers]
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert list(f.attrs["layer_names"]) == ["bert", "dropout_7", "mlm___cls"]
        assert "mlm___cls/tf_bert_for_masked_lm/bert/embeddings/word_embeddings/weight:0" in f
        assert f["dropout_7"].attrs["weight_names"].dtype == np.float64  # Keras' empty list
        assert list(f) == ["bert", "dropout_7", "mlm___cls", "top_level_model_weights"]
    with pytest.raises(ValueError, match="twice with different values"):
        T.write_tf_h5(tmp_path / "x.h5", "m", [("a", [("a/w", table)]), ("b", [("a/w", table + 1)])])


def test_long_name_lists_are_split_as_keras_does(tmp_path):
    names = [(f"bert/encoder/layer_._{i}/attention/self/query/" + "k" * 300, np.zeros(1, np.float32))
             for i in range(300)]
    T.write_tf_h5(tmp_path / "big.h5", "tf_bert_model", [("bert", names)])
    with h5py.File(tmp_path / "big.h5", "r") as f:
        chunked = sorted(k for k in f["bert"].attrs if k.startswith("weight_names"))
        assert chunked[0] == "weight_names0" and len(chunked) > 1
    weights, _ = T.read_tf_h5(tmp_path / "big.h5")
    assert list(weights) == [n for n, _ in names]


def test_scalars_dtypes_and_atomic_replace(tmp_path):
    layers = [("m", [("m/step", np.int64(3)), ("m/w", np.ones((2, 2), np.float16))])]
    path = tmp_path / "tf_model.h5"
    path.write_bytes(b"old")
    T.write_tf_h5(path, "tf_m", layers)
    weights, _ = T.read_tf_h5(path)
    assert weights["m/step"] == 3 and weights["m/step"].dtype == np.int64 and weights["m/w"].dtype == np.float16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tf_model.h5"]  # no side file left behind
    with pytest.raises(ValueError, match="without ':0'"):
        T.write_tf_h5(path, "tf_m", [("m", [("m/w:0", np.ones(1))])])
    assert T.read_tf_h5(path)[0].keys() == weights.keys()  # a refused write leaves the old file


# ---- shards ----------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not (SEQ / "sharded" / T.TF_INDEX).is_file(), reason="no v4 shard fixture")
def test_v4_shards_read_and_rewrite_identical(tmp_path):
    whole, info = T.read_tf_h5(SEQ / "tf_model.h5")
    sharded, sinfo = T.read_tf_weights(SEQ / "sharded")
    assert sinfo.sharded and sinfo.model_name == info.model_name
    assert set(sharded) == set(whole)
    for key, value in whole.items():
        assert np.array_equal(sharded[key], value), key
    v4_index = json.loads((SEQ / "sharded" / T.TF_INDEX).read_text())
    v4_files = sorted(set(v4_index["weight_map"].values()))
    size = _shard_limit(v4_index)
    names = T.write_tf_weights(tmp_path, info.model_name, _layers(whole, info), max_shard_size=size)
    assert names == v4_files + [T.TF_INDEX]
    assert (tmp_path / T.TF_INDEX).read_text() == (SEQ / "sharded" / T.TF_INDEX).read_text()
    for name in v4_files:
        assert _structure(tmp_path / name) == _structure(SEQ / "sharded" / name), name
        assert (tmp_path / name).read_bytes() == (SEQ / "sharded" / name).read_bytes(), name
    # The same from the model's weights in model.weights order (what the Keras wing will pass).
    order = [k.split("/", 1)[1][:-2] for k in json.loads((SEQ / "tree.json").read_text())["model_weights"]]
    again = tmp_path / "again"
    again.mkdir()
    assert T.write_tf_sharded(again, info.model_name, [(k, whole[k]) for k in order], size) == names
    for name in names:
        assert (again / name).read_bytes() == (SEQ / "sharded" / name).read_bytes(), name


def _shard_limit(index):
    return json.loads((SEQ / "sharded" / "tree.json").read_text())["max_shard_size"]


def test_own_shards_round_trip(tmp_path):
    layers = [("bert", [(f"bert/w{i}", np.full((10, 10), i, np.float32)) for i in range(5)]), ("classifier", [
        ("classifier/kernel", np.ones((10, 2), np.float32))])]
    names = T.write_tf_weights(tmp_path, "tf_bert_for_sequence_classification", layers, max_shard_size=900)
    assert names[-1] == T.TF_INDEX and len(names) == 4
    index = json.loads((tmp_path / T.TF_INDEX).read_text())
    assert index["weight_map"]["tf_bert_for_sequence_classification/bert/w0:0"] == "tf_model-00001-of-00003.h5"
    assert index["metadata"]["total_size"] == 5 * 400 + 80
    with h5py.File(tmp_path / names[0], "r") as f:
        assert list(f.attrs["layer_names"]) == ["bert/w0:0", "bert/w1:0"] and "bert/w0:0" in f
    weights, info = T.read_tf_weights(tmp_path)
    assert info.model_name == "tf_bert_for_sequence_classification" and info.sharded
    assert np.array_equal(weights["bert/w4"], np.full((10, 10), 4, np.float32))
    # Saving again as one file removes the stale shards and index.
    assert T.write_tf_weights(tmp_path, "tf_bert_for_sequence_classification", layers) == [T.TF_WEIGHTS]
    assert sorted(p.name for p in tmp_path.iterdir()) == [T.TF_WEIGHTS]


# ---- failures name the file and the problem --------------------------------------------------------------------
def _small(tmp_path):
    path = tmp_path / "src.h5"
    T.write_tf_h5(path, "tf_m", [("m", [("m/w", np.ones((64, 64), np.float32))])])
    return path


def test_truncated_file(tmp_path):
    raw = _small(tmp_path).read_bytes()
    bad = tmp_path / "tf_model.h5"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="tf_model.h5"):
        T.read_tf_h5(bad)


def test_empty_and_non_hdf5_files(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        T.read_tf_h5(tmp_path / "empty.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    with pytest.raises(CheckpointError, match="text.h5.*HDF5"):
        T.read_tf_h5(tmp_path / "text.h5")
    (tmp_path / "lfs.h5").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    with pytest.raises(CheckpointError, match="git lfs"):
        T.read_tf_h5(tmp_path / "lfs.h5")
    with pytest.raises(CheckpointNotFoundError):
        T.read_tf_h5(tmp_path / "absent.h5")


def test_foreign_h5_files(tmp_path):
    with h5py.File(tmp_path / "k3.weights.h5", "w") as f:  # what Keras 3 save_weights writes
        f.create_group("layers").create_group("dense").create_group("vars").create_dataset("0", data=np.ones(2))
        f.create_group("vars")
    with pytest.raises(CheckpointError, match=r"k3\.weights\.h5.*layer_names.*Keras 3"):
        T.read_tf_h5(tmp_path / "k3.weights.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.ones(2))
    with pytest.raises(CheckpointError, match="plain.h5.*layer_names"):
        T.read_tf_h5(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "nogroup.h5", "w") as f:
        f.attrs["layer_names"] = [b"bert"]
    with pytest.raises(CheckpointError, match="nogroup.h5.*'bert'"):
        T.read_tf_h5(tmp_path / "nogroup.h5")


def test_weight_listed_without_dataset(tmp_path):
    path = _small(tmp_path)
    with h5py.File(path, "a") as f:
        names = [n.encode() for n in f["m"].attrs["weight_names"]] + [b"tf_m/m/gone:0"]
        f["m"].attrs["weight_names"] = names
    with pytest.raises(CheckpointError, match=r"src\.h5.*tf_m/m/gone:0"):
        T.read_tf_h5(path)


def test_find_tf_weights(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=str(tmp_path)):
        T.find_tf_weights(tmp_path)
    T.write_tf_weights(tmp_path, "tf_m", [("m", [("m/w", np.ones(3, np.float32))])])
    assert T.find_tf_weights(tmp_path) == [tmp_path / T.TF_WEIGHTS]
    (tmp_path / T.TF_INDEX).write_text("{}")
    with pytest.raises(CheckpointError, match="both"):
        T.find_tf_weights(tmp_path)
    (tmp_path / T.TF_WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match="weight_map"):
        T.find_tf_weights(tmp_path)


def test_h5py_is_imported_only_on_use(monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if not installed: the module itself still imports
    path = tmp_path / "tf_model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ImportError, match=r"warmstart\[tf\]"):
        T.read_tf_h5(path)
    with pytest.raises(ImportError, match="h5py"):
        T.write_tf_h5(tmp_path / "x.h5", "tf_m", [("m", [])])
