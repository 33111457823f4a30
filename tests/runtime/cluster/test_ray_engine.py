"""``--engine ray``: the same jobs on Ray Data, on a two-node cluster made on this machine.

The exact path (``--precision fp32 --backend onnxruntime``, exact decoding) must give what the
local engine gives: same top-1, scores within 1e-4, embeddings within 1e-5, same order. Faults:
an actor killed mid-run is restarted by Ray and its batch redone (no image lost or counted
twice); a driver killed with SIGKILL resumes from its checkpoint; a node that cannot run the
plan, a path no node sees, an unreachable address and a missing Ray stop before any work.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is part of the dev lock")

from bioclip_edge.cli import main as cli_main  # noqa: E402
from bioclip_edge.runtime.cluster.connect import ClusterError  # noqa: E402
from bioclip_edge.runtime.cluster.engine import RayEngine  # noqa: E402
from bioclip_edge.runtime.cluster.options import RayOptions  # noqa: E402
from bioclip_edge.runtime.inference.plan import SessionOptions  # noqa: E402
from bioclip_edge.runtime.jobs.classifier import Classifier  # noqa: E402
from bioclip_edge.runtime.jobs.classify_job import ClassifyJob, run_classify  # noqa: E402

EXACT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime")}
EXACT_ARGS = ["--precision", "fp32", "--backend", "onnxruntime"]
LABELS = "lion,leopard,empty savanna,rocket,cat"


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on this machine; this process is their driver."""
    from ray.cluster_utils import Cluster

    from bioclip_edge.runtime.cluster.connect import quiet_ray_data

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
    quiet_ray_data(ray)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def card(photo_dir, tmp_path_factory) -> Path:
    """Twelve photos (two of each, one in a folder with a space and a non-ASCII letter) and a broken file."""
    folder = tmp_path_factory.mktemp("ray") / "card"
    (folder / "caméra 2").mkdir(parents=True)
    for photo in sorted(photo_dir.glob("*.jpg")):
        shutil.copy(photo, folder / photo.name)
        shutil.copy(photo, folder / "caméra 2" / photo.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def engine(cluster, **options) -> RayEngine:
    return RayEngine(RayOptions(address=cluster.address, **options))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_results(ours: list[dict], theirs: list[dict]) -> None:
    """Same images in the same order, same failures, same top-1, scores within 1e-4."""
    assert [r["filepath"] for r in ours] == [r["filepath"] for r in theirs]
    for a, b in zip(ours, theirs):
        assert bool(a["failures"]) == bool(b["failures"]), a["filepath"]
        pa, pb = a.get("predictions") or [], b.get("predictions") or []
        assert [p["index"] for p in pa[:1]] == [p["index"] for p in pb[:1]], a["filepath"]
        assert np.allclose([p["score"] for p in pa], [p["score"] for p in pb], atol=1e-4), a["filepath"]


@pytest.fixture(scope="module")
def local_results(tiny_bundle, card, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    run_classify(Classifier(tiny_bundle, LABELS.split(","), **EXACT), ClassifyJob(out=out, progress=False), [card])
    return records(out)


def test_ray_classify_equals_the_local_engine(cluster, tiny_bundle, card, local_results, tmp_path):
    clf = Classifier(tiny_bundle, LABELS.split(","), **EXACT)
    out = tmp_path / "ray.json"
    summary = run_classify(clf, ClassifyJob(out=out, progress=False), [card], engine=engine(cluster))
    assert summary.total == 13 and summary.failed == 1
    doc = json.loads(out.read_text())
    meta = doc["info"]["classifier_metadata"]
    assert meta["engine"] == "ray" and meta["actors"] == 2 and "2 node(s)" in meta["cluster"]  # one actor per node
    jsonl = tmp_path / "ray.jsonl"
    run_classify(clf, ClassifyJob(out=jsonl, progress=False), [card], engine=engine(cluster))
    assert_same_results(records(jsonl), local_results)


def test_ray_embeddings_as_parquet_equal_the_local_engine(cluster, tiny_bundle, card, tmp_path):
    import pyarrow.parquet as pq

    from bioclip_edge.runtime.images.embedder import ImageEmbedder
    from bioclip_edge.runtime.images.request import ImageRequest
    from bioclip_edge.runtime.jobs.embed_job import EmbedJob, run_embed
    from bioclip_edge.runtime.jobs.parquet_output import embedding_matrix

    embedder = ImageEmbedder(tiny_bundle, ImageRequest(**EXACT))
    run_embed(embedder, EmbedJob(out=tmp_path / "local.parquet", progress=False), [card])
    run_embed(embedder, EmbedJob(out=tmp_path / "ray.parquet", progress=False), [card], engine=engine(cluster))
    local, ours = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    assert ours.column("filepath").to_pylist() == local.column("filepath").to_pylist()
    assert ours.column("failure").to_pylist() == local.column("failure").to_pylist()
    assert np.abs(embedding_matrix(ours.column("embedding")) - embedding_matrix(local.column("embedding"))).max() < 1e-5


def test_ray_classifies_megadetector_boxes_like_the_local_engine(cluster, tiny_bundle, card, tmp_path):
    boxes = [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.6]}, {"category": "2", "conf": 0.8, "bbox": [0.5, 0.5, 0.4, 0.4]}]
    images = [{"file": "astronaut.jpg", "detections": boxes}, {"file": "caméra 2/chelsea.jpg", "detections": boxes[:1]},
              {"file": "coffee.jpg", "detections": []}, {"file": "gone.jpg", "failure": "Failure image access"}]
    md = tmp_path / "md.json"
    md.write_text(json.dumps({"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal", "2": "person"},
                              "images": images}))
    clf = Classifier(tiny_bundle, LABELS.split(","), **EXACT)
    outs = {}
    for name, where in (("local", None), ("ray", engine(cluster))):
        job = ClassifyJob(out=tmp_path / f"{name}.jsonl", progress=False).with_detections(md, [card])
        run_classify(clf, job, engine=where)
        outs[name] = records(job.out)
    assert [r["filepath"] for r in outs["ray"]] == [im["file"] for im in images]
    for a, b in zip(outs["ray"], outs["local"]):
        assert len(a.get("detections") or []) == len(b.get("detections") or [])
        for da, db in zip(a.get("detections") or [], b.get("detections") or []):
            assert [p["index"] for p in da.get("predictions", [])] == [p["index"] for p in db.get("predictions", [])]
            assert np.allclose([p["score"] for p in da.get("predictions", [])], [p["score"] for p in db.get("predictions", [])], atol=1e-4)


def test_dataset_api_takes_image_bytes_from_rays_reader(cluster, tiny_bundle, card, local_results):
    from bioclip_edge.runtime.cluster import datasets
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest

    images = ray.data.read_binary_files(str(card), include_paths=True, ray_remote_args={"num_cpus": 0.5})  # 1-CPU nodes
    rows = datasets.classify_dataset(images, tiny_bundle, LABELS.split(","), ClassifyRequest(**EXACT),
                                     RayOptions(address=cluster.address)).take_all()
    by_path = {os.path.abspath(r["filepath"]): r for r in rows}
    assert len(rows) == 13
    for expected in local_results:
        row = by_path[os.path.abspath(expected["filepath"])]
        if expected["failures"]:
            assert row["failure"] and row["labels"] == []
        else:
            assert row["indices"][0] == expected["predictions"][0]["index"]
            assert abs(row["scores"][0] - expected["predictions"][0]["score"]) < 1e-4


def _worker_pids() -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        if "ClassifyWorker" in " ".join(proc.info.get("cmdline") or []):
            pids.append(proc.pid)
    return pids


def test_an_actor_killed_mid_run_is_restarted_and_no_image_is_lost_or_repeated(cluster, tiny_bundle, card, local_results):
    clf = Classifier(tiny_bundle, LABELS.split(","), **EXACT)
    from bioclip_edge.runtime.jobs.runner import job_items

    items = job_items([card], relative=False)
    stream = engine(cluster, images_per_task=2).classify(clf, items)
    got = [next(stream)]  # a first batch is back: the actors are mid-run
    pids = _worker_pids()
    assert pids, "no ClassifyWorker actor process found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    got += list(stream)
    names = [r["filepath"] for r in got]
    assert len(names) == len(set(names)) == len(items)  # every image once
    order = {r["filepath"]: i for i, r in enumerate(local_results)}
    assert_same_results(sorted(got, key=lambda r: order[r["filepath"]]), local_results)
    assert set(_worker_pids()).isdisjoint(pids)  # the pool ran on restarted actors


def test_a_node_that_would_compute_differently_stops_the_job(cluster, tiny_bundle, card, tmp_path):
    clf = Classifier(tiny_bundle, LABELS.split(","), **EXACT)
    clf.embedder.provider = "OpenVINO CPU (bfloat16)"  # the driver claims bf16; the nodes run onnxruntime fp32
    with pytest.raises(ClusterError, match="a Ray worker stopped the job: node .* one output must not mix"):
        run_classify(clf, ClassifyJob(out=tmp_path / "p.csv", progress=False), [card], engine=engine(cluster))
    assert not (tmp_path / "p.csv").exists()


def test_a_path_no_node_sees_is_named_before_any_work(cluster, tiny_bundle, tmp_path):
    from bioclip_edge.runtime.cluster.preflight import check_nodes

    ray_engine = engine(cluster)
    with pytest.raises(ClusterError, match=r"bundle manifest /nowhere/manifest.json: not readable on node .*every node sees"):
        check_nodes(ray_engine.start(), [("bundle manifest", "/nowhere/manifest.json")], ["onnxruntime"])
    with pytest.raises(ClusterError, match="cannot import no_such_backend"):
        check_nodes(ray_engine.start(), [], ["no_such_backend"])


def test_missing_ray_is_a_clear_error(tiny_bundle, card, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert cli_main(["classify", str(tiny_bundle), str(card), "--labels", "a,b", "--out", str(tmp_path / "p.csv"),
                     "--engine", "ray"]) == 2
    assert 'pip install "bioclip-edge[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_ray_options_without_the_ray_engine_are_refused(tiny_bundle, card, tmp_path, capsys):
    assert cli_main(["classify", str(tiny_bundle), str(card), "--labels", "a,b", "--out", str(tmp_path / "p.csv"),
                     "--ray-actors", "2"]) == 2
    assert "need --engine ray" in capsys.readouterr().err


# --- the command line, as users run it: its own process, RAY_ADDRESS, kill -9 ----------------------
def cli(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bioclip_edge.cli", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_unreachable_ray_address_exits_2_before_any_work(tiny_bundle, card, tmp_path):
    proc = cli("classify", str(tiny_bundle), str(card), "--labels", "a,b", "--out", str(tmp_path / "p.csv"),
               "--engine", "ray", env={"RAY_ADDRESS": "127.0.0.1:9"})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "RAY_ADDRESS=127.0.0.1:9: cannot reach a Ray head" in err, err
    assert not (tmp_path / "p.csv").exists()


@pytest.fixture(scope="module")
def big_card(photo_dir, tmp_path_factory) -> Path:
    """240 photos: long enough to be killed mid-run."""
    folder = tmp_path_factory.mktemp("big") / "card"
    folder.mkdir()
    photos = sorted(photo_dir.glob("*.jpg"))
    for i in range(240):
        shutil.copy(photos[i % len(photos)], folder / f"img{i:04d}.jpg")
    return folder


def test_driver_killed_with_sigkill_resumes_on_the_cluster_losing_and_repeating_nothing(cluster, tiny_bundle, big_card, tmp_path):
    out = tmp_path / "p.jsonl"
    args = ["classify", str(tiny_bundle), str(big_card), "--labels", LABELS, "--out", str(out), "--engine", "ray",
            "--checkpoint-every", "8", "--no-progress", "--batch-size", "1", "--threads", "0", *EXACT_ARGS]
    env = {"RAY_ADDRESS": cluster.address}
    proc = cli(*args, env=env)
    checkpoint = out.with_name(out.name + ".checkpoint.jsonl")
    deadline = time.monotonic() + 180
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(checkpoint.read_text().splitlines()) - 1  # the header line holds the fingerprint
    assert 0 < kept < 240 and not out.exists()
    resumed = cli(*args, "--resume", env=env)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"kept {kept} done before" in stdout and f"classified {240 - kept} image(s)" in stdout, stdout
    names = [r["filepath"] for r in records(out)]
    assert names == sorted(str(p) for p in big_card.glob("*.jpg"))  # every image once, in input order
    local = tmp_path / "local.jsonl"
    run_classify(Classifier(tiny_bundle, LABELS.split(","), **EXACT), ClassifyJob(out=local, progress=False), [big_card])
    assert_same_results(records(out), records(local))


def test_local_ray_started_by_the_command_gives_the_local_engines_results(tiny_bundle, card, local_results, tmp_path):
    out = tmp_path / "p.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([sys.executable, "-m", "bioclip_edge.cli", "classify", str(tiny_bundle), str(card), "--labels",
                             LABELS, "--out", str(out), "--engine", "ray", *EXACT_ARGS], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout + stderr  # the broken file failed, as locally
    assert "core_worker" not in stderr and "INFO" not in stderr, stderr  # no Ray log noise
    assert_same_results(records(out), local_results)


def test_ray_is_imported_only_for_the_ray_engine(tiny_bundle, card, tmp_path):
    """``--help`` and local runs never load Ray (seconds of start-up and memory on a field box)."""
    code = ("import sys; from bioclip_edge.cli import main; "
            f"rc = main(['classify', {str(tiny_bundle)!r}, {str(card / 'astronaut.jpg')!r}, '--labels', 'a,b', "
            f"'--out', {str(tmp_path / 'p.csv')!r}, '--no-progress']); "
            "assert 'ray' not in sys.modules, 'ray was imported'; print('rc', rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "rc 0" in proc.stdout, proc.stderr
