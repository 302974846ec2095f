"""Downloads for real: warmstart's loaders against a hub-like HTTP server on 127.0.0.1.

The server speaks only the part of the Hub protocol that huggingface_hub's snapshot_download and hf_hub_download
use (read from huggingface_hub 2.x: _snapshot_download.py, file_download.py, hf_api.py, utils/_http.py):

  GET      /api/models/{repo}/revision/{rev}  repo_info: {"id", "sha", "siblings": [{"rfilename"}]}
  GET      /api/models/{repo}/tree/{rev}      list_repo_tree: [{"type": "file", "path", "size", "oid", "lfs"?}]
  HEAD/GET /{repo}/resolve/{rev}/{file}       X-Repo-Commit, ETag (the git blob sha1), Content-Length; weights are
                                              LFS files, as on the Hub: a 302 to a CDN-like origin, with
                                              X-Linked-Etag (their sha256), X-Linked-Size and Location
  HEAD/GET /cdn/{sha256}                      the LFS bytes, served as "localhost" (another origin, like the CDN)

and answers an unknown repo, revision or file as the Hub does (404 with X-Error-Code RepoNotFound /
RevisionNotFound / EntryNotFound; 401 GatedRepo for a gated one). Every request is logged, so a scenario can
require that none was made.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE into constants when it is imported, so each scenario runs in a
fresh Python with its own environment; that Python prints one JSON line of facts and the assertions are made here.
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch

import warmstart

pytestmark = pytest.mark.slow  # four fresh Pythons that import torch: 20-30 s on 2 cores

REPO = "org/tiny"
BIN_REPO = "org/tiny-bin"
TEXT = "w1 w2 w3 [MASK] w4"
CHILD_TIMEOUT_S = 120  # a child that hangs (e.g. waiting on the server) fails the test instead of blocking it

# ------------------------------------------------------------------------------------------------ the hub server


def _git_blob_sha1(data: bytes) -> str:
    # The Hub's ETag for a file kept in git is its git blob id, not a hash of the bytes alone.
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Repo:
    def __init__(self, files: dict[str, bytes], lfs_suffixes=(".safetensors", ".bin")):
        self.files = files
        self.lfs = {name for name in files if name.endswith(lfs_suffixes)}
        self.sha = hashlib.sha1(b"".join(n.encode() + files[n] for n in sorted(files))).hexdigest()
        self.by_sha256 = {hashlib.sha256(files[n]).hexdigest(): n for n in self.lfs}

    def tree_entry(self, name: str) -> dict:
        data = self.files[name]
        entry = {"type": "file", "path": name, "size": len(data), "oid": _git_blob_sha1(data)}
        if name in self.lfs:
            # The tree lists an LFS file's pointer size and its real size and sha256 under "lfs".
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


class _Hub:
    """The served repos, the request log, and a serving loop bounded in requests and in time."""

    MAX_REQUESTS = 400  # the loop ends after this many requests even if nobody stops it
    LIFETIME_S = 300  # ... or after this long

    def __init__(self, repos: dict[str, _Repo], gated: set[str] = frozenset()):
        self.repos = repos
        self.gated = gated
        self.log: list[tuple[str, str, int]] = []  # (method, path, status)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.httpd = _LoopbackServer(("127.0.0.1", 0), _Handler)
        self.httpd.hub = self
        self.httpd.timeout = 0.1  # handle_request() returns when idle this long, so the loop re-checks its bounds
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="fake-hub", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.LIFETIME_S
        while not self._stop.is_set() and self.httpd.accepted < self.MAX_REQUESTS and time.monotonic() < deadline:
            self.httpd.handle_request()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.httpd.server_close()

    def take_log(self) -> list[tuple[str, str, int]]:
        """The requests since the last call (each scenario reads its own)."""
        with self._lock:
            log, self.log = self.log, []
        return log

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status))

    def route(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request, the way huggingface.co answers it."""
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            repo, error = self._find(m[1], m[2] or "main")
            if error:
                return error
            info = {"id": m[1], "modelId": m[1], "sha": repo.sha, "private": False, "tags": [],
                    "library_name": "transformers", "siblings": [{"rfilename": n} for n in sorted(repo.files)]}
            return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path):
            repo, error = self._find(m[1], m[2])
            if error:
                return error
            under = (m[3] or "").strip("/")
            names = [n for n in sorted(repo.files) if not under or n.startswith(under + "/")]
            return 200, {"Content-Type": "application/json"}, json.dumps([repo.tree_entry(n) for n in names]).encode()
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            repo, error = self._find(m[1], m[2])
            if error:
                return error
            name = m[3]
            commit = {"X-Repo-Commit": repo.sha}
            if name not in repo.files:
                return _hub_error(404, "EntryNotFound", f"{name} does not exist on {m[2]!r}", commit)
            data = repo.files[name]
            if name in repo.lfs:
                sha256 = hashlib.sha256(data).hexdigest()
                return 302, {**commit, "ETag": f'"{_git_blob_sha1(data)}"', "X-Linked-Etag": f'"{sha256}"',
                             "X-Linked-Size": str(len(data)),
                             "Location": f"http://localhost:{self.port}/cdn/{sha256}"}, b""
            return 200, {**commit, "ETag": f'"{_git_blob_sha1(data)}"',
                         "Content-Type": "application/octet-stream"}, data
        if m := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            for repo in self.repos.values():
                if m[1] in repo.by_sha256:
                    data = repo.files[repo.by_sha256[m[1]]]
                    return 200, {"ETag": f'"{m[1]}"', "Content-Type": "application/octet-stream"}, data
        # Not a route of the Hub: a plain 404, and the log shows which request the loaders should not have made.
        return 404, {"Content-Type": "text/plain"}, b"not a hub route"

    def _find(self, repo_id: str, revision: str):
        if repo_id in self.gated:  # what the Hub answers a client with no token for a gated repo
            return None, _hub_error(401, "GatedRepo", "Access to this model is restricted")
        repo = self.repos.get(repo_id)
        if repo is None:
            return None, _hub_error(404, "RepoNotFound", "Repository not found")
        if revision not in ("main", repo.sha):
            return None, _hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo, None


def _hub_error(status: int, code: str, message: str, extra: dict | None = None):
    # hf_raise_for_status turns X-Error-Code into RepositoryNotFoundError, RevisionNotFoundError, ...
    headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json", **(extra or {})}
    return status, headers, json.dumps({"error": message}).encode()


class _LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck past its socket timeout cannot keep pytest alive
    accepted = 0  # connections taken (one request each), counted here in the serving thread

    def verify_request(self, request, client_address) -> bool:
        if client_address[0] != "127.0.0.1":  # loopback clients only (it is bound to 127.0.0.1 anyway)
            return False
        self.accepted += 1
        return self.accepted <= self.hub.MAX_REQUESTS


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: each is counted, and no connection lingers
    timeout = 5  # seconds a silent client may hold a handler thread

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        status, headers, body = self.server.hub.route(self.command, path)
        self.server.hub.record(self.command, path, status)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        # A HEAD answer carries the length of the body a GET would get (huggingface_hub reads it as the size).
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass  # the hub's log is what the tests read; stderr stays quiet


# ------------------------------------------------------------------------------------------------ the checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny BERT masked LM and its tokenizer saved by warmstart into one folder, with the outputs to expect."""
    root = tmp_path_factory.mktemp("download")
    folder = root / "tiny"
    torch.manual_seed(0)
    config = warmstart.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37)
    model = warmstart.BertForMaskedLM(config).eval()
    model.save_pretrained(folder)
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(94))]) + "\n")
    tokenizer = warmstart.BertTokenizer(str(vocab))
    tokenizer.save_pretrained(folder)
    ids = tokenizer(TEXT)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    torch.save({"ids": ids, "logits": logits}, root / "expected.pt")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    # Every Hub repo has these two, and no loader reads them: they make the cached snapshot "incomplete" for
    # huggingface_hub, which is what a real partial download of a real repo looks like.
    files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    files["README.md"] = b"# tiny\n"
    # Many repos also hold other exports in sub-folders (onnx/, openvino/, checkpoint-500/): never downloaded for a
    # load of the root. Not even a valid file: reading it would fail the load.
    files["onnx/model.safetensors"] = b"not weights"
    files["onnx/config.json"] = b"not json"
    # A tokenizer kept in a sub-folder (subfolder="tok"), with an older copy nested in it that is never fetched.
    for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        files[f"tok/{name}"] = files[name]
    files["tok/old/vocab.txt"] = b"not a vocabulary\n"
    # An older repo: weights only as pytorch_model.bin (the .bin fallback downloads them).
    from safetensors.torch import load_file

    bin_file = root / "pytorch_model.bin"
    torch.save(load_file(folder / "model.safetensors"), bin_file)
    bin_files = {"config.json": files["config.json"], "pytorch_model.bin": bin_file.read_bytes(),
                 ".gitattributes": files[".gitattributes"]}
    return {"root": root, "files": files, "bin_files": bin_files, "expected": root / "expected.pt", "ids": ids}


@pytest.fixture(scope="module")
def hub(checkpoint):
    server = _Hub({REPO: _Repo(checkpoint["files"]), BIN_REPO: _Repo(checkpoint["bin_files"])},
                  gated={"org/gated"})
    yield server
    server.stop()


# ------------------------------------------------------------------------------------------------ the scenarios

# Runs in a fresh Python: argv[1] is the scenario, argv[2] a JSON of paths. Prints "RESULT <json>" last.
CHILD = r'''
import json, os, sys
import torch
import warmstart

scenario, args = sys.argv[1], json.loads(sys.argv[2])
cache = os.path.join(os.environ["HF_HOME"], "hub")
expected = torch.load(args["expected"])
facts = {}


def snapshot_files(repo):
    """Every file cached for the repo, as 'commit/path/in/repo'."""
    snaps = os.path.join(cache, "models--" + repo.replace("/", "--"), "snapshots")
    found = []
    for folder, _, names in os.walk(snaps):
        found += [os.path.relpath(os.path.join(folder, n), snaps).replace(os.sep, "/") for n in names]
    return sorted(found)


def loads(repo, order, **kw):
    """Load tokenizer, config and model in `order`; record what each produced."""
    out = {}
    for what in order:
        if what == "tokenizer":
            tok = warmstart.AutoTokenizer.from_pretrained(repo, **kw)
            out["tokenizer"] = {"class": type(tok).__name__, "ids": tok(args["text"])["input_ids"],
                                "name_or_path": tok.name_or_path}
        elif what == "config":
            cfg = warmstart.AutoConfig.from_pretrained(repo, **kw)
            out["config"] = {"class": type(cfg).__name__, "model_type": cfg.model_type,
                             "hidden_size": cfg.hidden_size, "vocab_size": cfg.vocab_size}
        else:
            model = warmstart.AutoModelForMaskedLM.from_pretrained(repo, **kw).eval()
            with torch.no_grad():
                logits = model(torch.tensor([expected["ids"]])).logits
            out["model"] = {"class": type(model).__name__,
                            "max_abs_diff": (logits - expected["logits"]).abs().max().item()}
        out["files_after_" + what] = snapshot_files(repo)
    return out


def error_of(load):
    try:
        load()
    except Exception as e:
        return {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)}
    return None


def errors(repo, **kw):
    return {
        "model": error_of(lambda: warmstart.AutoModelForMaskedLM.from_pretrained(repo, **kw)),
        "config": error_of(lambda: warmstart.AutoConfig.from_pretrained(repo, **kw)),
        "tokenizer": error_of(lambda: warmstart.AutoTokenizer.from_pretrained(repo, **kw)),
        "tokenizer_class": error_of(lambda: warmstart.BertTokenizerFast.from_pretrained(repo, **kw)),
    }


if scenario == "download":
    # the tokenizer first: it must fetch the tokenizer files only, not the weights
    facts["loads"] = loads(args["repo"], ["tokenizer", "config", "model"])
    facts["bin_loads"] = loads(args["bin_repo"], ["model"])
    tok = warmstart.AutoTokenizer.from_pretrained(args["repo"], subfolder="tok")
    facts["sub_tokenizer"] = {"ids": tok(args["text"])["input_ids"], "files": snapshot_files(args["repo"])}
elif scenario == "offline":
    facts["loads"] = loads(args["repo"], ["model", "tokenizer", "config"])
    facts["missing"] = errors("org/missing")
elif scenario == "local_files_only":
    facts["loads"] = loads(args["repo"], ["model", "tokenizer", "config"], local_files_only=True)
    facts["missing_local"] = errors("org/missing", local_files_only=True)
    facts["missing_on_hub"] = errors("org/nothere")  # the network is allowed: the hub says 404
    facts["bad_revision"] = errors(args["repo"], revision="v9")
    facts["gated"] = error_of(lambda: warmstart.AutoModelForMaskedLM.from_pretrained("org/gated"))
elif scenario == "unreachable":
    facts["loads"] = loads(args["repo"], ["model", "tokenizer", "config"])
    facts["missing"] = errors("org/missing")
print("RESULT " + json.dumps(facts))
'''

# What a loader may not inherit from the machine running the tests: offline switches, other caches, tokens, proxies.
_SCRUBBED = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE",
             "XDG_CACHE_HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT", "HF_HOME"}


def _run(scenario: str, checkpoint, hf_home: Path, endpoint: str, **env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.lower().endswith("_proxy")}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=endpoint, NO_PROXY="127.0.0.1,localhost",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               # a server that stops answering fails the scenario in seconds, not after huggingface_hub's 10 s
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5", **env_extra)
    args = {"repo": REPO, "bin_repo": BIN_REPO, "expected": str(checkpoint["expected"]), "text": TEXT}
    work = checkpoint["root"] / f"cwd-{scenario}"  # an empty folder: 'org/tiny' must not be a local path
    work.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", CHILD, scenario, json.dumps(args)], env=env, cwd=work,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"scenario {scenario!r} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _assert_loaded(loads: dict, checkpoint) -> None:
    assert loads["model"]["class"] == "BertForMaskedLM"
    assert loads["model"]["max_abs_diff"] <= 1e-6, loads["model"]
    assert loads["tokenizer"]["class"] == "BertTokenizerFast"
    assert loads["tokenizer"]["ids"] == checkpoint["ids"]
    assert loads["tokenizer"]["name_or_path"] == REPO  # the id the user gave, as transformers keeps it
    assert loads["config"] == {"class": "BertConfig", "model_type": "bert", "hidden_size": 32, "vocab_size": 99}


def _assert_one_clear_error(error: dict | None, repo: str, *parts: str) -> None:
    assert error is not None, f"loading {repo!r} did not fail"
    assert "CheckpointNotFoundError" in error["mro"] and "FileNotFoundError" in error["mro"], error
    assert f"'{repo}'" in error["message"], error
    for part in parts:
        assert part in error["message"], (part, error)


@pytest.fixture(scope="module")
def downloaded(checkpoint, hub):
    """Scenario 1, run once: an empty HF_HOME, the network allowed, everything fetched from the server."""
    hf_home = checkpoint["root"] / "hf_home"
    hf_home.mkdir()
    hub.take_log()
    facts = _run("download", checkpoint, hf_home, hub.endpoint)
    return {"facts": facts, "hf_home": hf_home, "log": hub.take_log()}


def test_downloads_model_tokenizer_and_config_when_the_network_is_allowed(downloaded, checkpoint):
    loads = downloaded["facts"]["loads"]
    _assert_loaded(loads, checkpoint)
    assert (downloaded["hf_home"] / "hub" / "models--org--tiny").is_dir()
    # The tokenizer alone fetched the tokenizer files (and config.json, which AutoTokenizer may read), no weights.
    tokenizer_files = {name.split("/", 1)[1] for name in loads["files_after_tokenizer"]}
    assert tokenizer_files == {"config.json", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"}
    all_files = {name.split("/", 1)[1] for name in loads["files_after_model"]}
    assert all_files == tokenizer_files | {"model.safetensors"}, all_files  # no README, .gitattributes, onnx/
    # subfolder="tok": that folder's tokenizer files, and nothing nested deeper in it
    sub = downloaded["facts"]["sub_tokenizer"]
    assert sub["ids"] == checkpoint["ids"]
    assert {name.split("/", 1)[1] for name in sub["files"]} - all_files == {
        "tok/tokenizer_config.json", "tok/special_tokens_map.json", "tok/vocab.txt"}, sub["files"]
    # A repo with only pytorch_model.bin: found by the .bin fallback, same weights.
    bin_loads = downloaded["facts"]["bin_loads"]
    assert bin_loads["model"]["max_abs_diff"] <= 1e-6, bin_loads
    assert {name.split("/", 1)[1] for name in bin_loads["files_after_model"]} == {"config.json", "pytorch_model.bin"}
    log = downloaded["log"]
    assert log and all(status in (200, 302) for _, _, status in log), log
    # The weights came the way the Hub sends them: a 302 from /resolve, then the bytes from the CDN, once each.
    assert [m for m, p, _ in log if p.startswith("/cdn/")] == ["GET", "GET"], log
    # AutoTokenizer resolves the repo once, not once more in the class it picks, and a config load fetches JSON
    # only. The log up to the first request for the weights holds four repo_info calls: AutoTokenizer,
    # AutoConfig, then AutoModelForMaskedLM's config and its model class (which is the first to ask for weights).
    before_weights = log[:next(i for i, (_, p, _) in enumerate(log) if p.endswith("model.safetensors"))]
    assert [p for _, p, _ in before_weights].count(f"/api/models/{REPO}/revision/main") == 4, log


def test_hf_hub_offline_reads_the_cache_only_and_names_a_missing_repo(downloaded, checkpoint, hub):
    hub.take_log()
    facts = _run("offline", checkpoint, downloaded["hf_home"], hub.endpoint, HF_HUB_OFFLINE="1")
    assert hub.take_log() == []  # not one request reached the server
    _assert_loaded(facts["loads"], checkpoint)
    for error in facts["missing"].values():
        _assert_one_clear_error(error, "org/missing", "no entry 'models--org--missing'",
                                "not asked, the environment says offline")


def test_local_files_only_never_asks_and_a_repo_missing_on_the_hub_is_one_clear_error(downloaded, checkpoint, hub):
    hub.take_log()
    facts = _run("local_files_only", checkpoint, downloaded["hf_home"], hub.endpoint)
    log = hub.take_log()
    _assert_loaded(facts["loads"], checkpoint)
    for error in facts["missing_local"].values():
        _assert_one_clear_error(error, "org/missing", "not asked, local_files_only=True")
    # local_files_only asked nothing; the only requests are those the Hub refused (no such repo, revision v9, gated)
    asked = {path for _, path, _ in log}
    assert log and all(status in (401, 404) for _, _, status in log), log
    assert asked == {"/api/models/org/nothere/revision/main", f"/api/models/{REPO}/revision/v9",
                     "/api/models/org/gated/revision/main"}, log
    for error in facts["missing_on_hub"].values():
        _assert_one_clear_error(error, "org/nothere", "has no such repo", "RepositoryNotFoundError: HTTP 404",
                                hub.endpoint)
    for error in facts["bad_revision"].values():
        _assert_one_clear_error(error, REPO, "revision 'v9'", "RevisionNotFoundError: HTTP 404")
    _assert_one_clear_error(facts["gated"], "org/gated", "gated repo", "token")


def test_an_unreachable_hub_falls_back_to_the_cache(downloaded, checkpoint):
    # A port held bound but never listening, for as long as the child runs: its connections are refused at once,
    # and no other process can take the port meanwhile.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        facts = _run("unreachable", checkpoint, downloaded["hf_home"], f"http://127.0.0.1:{s.getsockname()[1]}")
    _assert_loaded(facts["loads"], checkpoint)
    for error in facts["missing"].values():
        _assert_one_clear_error(error, "org/missing", "no entry 'models--org--missing'", "could not be reached")
