"""A job scores several records' vectors in one label-matrix pass (``jobs.scoring_window``): the
records, their order and their predictions are those of scoring each vector alone, for stills,
videos and MegaDetector boxes, and a killed run still loses nothing finished."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.inference.session import SessionOptions
from bioclip_edge.runtime.images.detections import read_detections
from bioclip_edge.runtime.images.discover import discover
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from bioclip_edge.runtime.jobs.classifier import Classifier
from bioclip_edge.runtime.jobs.runner import JobConfig, run_job
from bioclip_edge.runtime.jobs.scoring_window import NO_VECTORS, Waiting, scored_in_windows
from bioclip_edge.runtime.labels import scoring

LABELS = ["lion", "leopard", "spotted hyena", "empty savanna", "domestic cat", "coffee cup"]
EXACT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime")}
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")


def _has_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def card(photo_dir, tmp_path_factory) -> Path:
    """Six stills, a broken file and, with PyAV, a good video and a broken one."""
    root = tmp_path_factory.mktemp("window-card")
    for name in PHOTOS:
        shutil.copy(photo_dir / f"{name}.jpg", root / f"{name}.jpg")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    if _has_av():
        from tests.helpers.video_factory import write_video

        write_video(root / "clip.mp4", photo_dir / "chelsea.jpg", "mjpeg", fmt="mp4")
        (root / "notes.avi").write_text("field notes, not a video\n")
    return root


@pytest.fixture(scope="module")
def clf(tiny_bundle) -> Classifier:
    return Classifier(Bundle.open(tiny_bundle), LABELS, top_k=3, batch_size=4, decode_threads=2, **EXACT)


class CountingTopk:
    """Wraps ``labels.topk``: counts calls and keeps every vector scored, in call order."""

    def __init__(self, topk):
        self.topk, self.calls, self.rows = topk, 0, []

    def __call__(self, vectors, k, *args, **kw):
        self.calls += 1
        self.rows.append(np.array(vectors))
        return self.topk(vectors, k, *args, **kw)


def _run(clf: Classifier, window: int, produce, monkeypatch) -> tuple[list[dict], CountingTopk]:
    counter = CountingTopk(clf.labels.topk)
    with monkeypatch.context() as m:
        m.setattr(clf.labels, "topk", counter)
        m.setattr(clf, "score_window", window)
        records = list(produce())
    return records, counter


def _per_vector(records: list[dict]) -> list[list[dict]]:
    """Each scored vector's predictions in scoring order: stills, video frames, classified boxes."""
    out = []
    for r in records:
        if "frames" in r:
            out += [f["predictions"] for f in r["frames"]]
        elif r.get("detections"):
            out += [d["predictions"] for d in r["detections"] if "predictions" in d]
        elif r.get("predictions") and "detections" not in r:
            out.append(r["predictions"])
    return out


def _without_scores(value):
    if isinstance(value, dict):
        return {k: _without_scores(v) for k, v in value.items() if k != "score"}
    if isinstance(value, list):
        return [_without_scores(v) for v in value]
    return value


def _scores(value) -> list[float]:
    """Every ``score`` inside, in order."""
    if isinstance(value, dict):
        own = [value["score"]] if "score" in value else []
        return own + [s for k, v in value.items() if k != "score" for s in _scores(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scores(v)]
    return []


def _assert_each_vector_alone(clf: Classifier, records: list[dict], counter: CountingTopk) -> None:
    rows = np.concatenate(counter.rows)
    found = _per_vector(records)
    assert len(found) == len(rows)
    for row, predictions in zip(rows, found):
        idx, probs = counter.topk(row[None], clf.top_k)
        assert [p["index"] for p in predictions] == idx[0].tolist()
        np.testing.assert_allclose([p["score"] for p in predictions], probs[0], rtol=1e-6, atol=1e-7)


def _assert_same_records(a: list[dict], b: list[dict]) -> None:
    assert _without_scores(a) == _without_scores(b)  # order, fields, labels and indices
    np.testing.assert_allclose(_scores(a), _scores(b), rtol=1e-6, atol=1e-7)


def test_window_rule_is_data_on_the_matrix(clf):
    assert clf.labels.scoring_window == 1 == clf.score_window  # a few labels: records stream one by one
    assert scoring.scoring_window(867_000, 768) == scoring.JOB_WINDOW
    assert scoring.scoring_window(2_000, 768) == 1


@pytest.mark.parametrize("window", [3, 64])
def test_windowed_images_and_videos_equal_scoring_each_alone(clf, card, window, monkeypatch):
    items = discover([card])
    alone, one = _run(clf, 1, lambda: clf.iter_items(items), monkeypatch)
    together, many = _run(clf, window, lambda: clf.iter_items(items), monkeypatch)
    _assert_same_records(together, alone)
    assert [r["filepath"] for r in together] == [it.filepath for it in items]
    assert many.calls < one.calls and many.calls <= -(-sum(len(r) for r in many.rows) // window) + 1
    _assert_each_vector_alone(clf, together, many)
    names = {Path(r["filepath"]).name: r for r in together}
    assert names["broken.jpg"]["failures"] and names["broken.jpg"]["predictions"] == []
    if _has_av():
        assert len(names["clip.mp4"]["frames"]) > 1 and names["clip.mp4"]["predictions"]
        assert names["notes.avi"]["frame_rate"] == -1.0 and names["notes.avi"]["frames_processed"] == []


def _detections_file(card: Path, tmp_path: Path) -> Path:
    box = lambda conf, bbox, **kw: {"category": "1", "conf": conf, "bbox": bbox, **kw}  # noqa: E731
    images = [
        {"file": "chelsea.jpg", "detections": [box(0.9, [0.1, 0.1, 0.5, 0.6]), box(0.05, [0, 0, 0.2, 0.2]),
                                               box(0.8, [0.4, 0.3, 0.5, 0.5])]},
        {"file": "coffee.jpg", "detections": []},
        {"file": "rocket.jpg", "detections": [box(0.7, [0.2, 0.0, 0.6, 1.0])]},
        {"file": "gone.jpg", "detections": [box(0.7, [0, 0, 1, 1])]},
        {"file": "broken.jpg", "failure": "Failure image access", "detections": None},
        {"file": "astronaut.jpg", "detections": [box(0.6, [0.0, 0.0, 0.5, 0.5]), box(0.6, [0.5, 0.5, 0.5, 0.5])]},
    ]
    if _has_av():
        images.append({"file": "clip.mp4", "frame_rate": 10.0, "frames_processed": [0, 10, 20], "detections": [
            box(0.9, [0.1, 0.1, 0.5, 0.5], frame_number=10), box(0.8, [0.4, 0.2, 0.5, 0.6], frame_number=20)]})
    md = {"info": {"format_version": "1.5"}, "detection_categories": {"1": "animal"}, "images": images}
    path = tmp_path / "md.json"
    path.write_text(json.dumps(md))
    return path


@pytest.mark.parametrize("window", [2, 64])
def test_windowed_boxes_equal_scoring_each_alone(clf, card, tmp_path, window, monkeypatch):
    detections = read_detections(_detections_file(card, tmp_path))
    alone, one = _run(clf, 1, lambda: clf.iter_detections(detections, card, 0.2), monkeypatch)
    together, many = _run(clf, window, lambda: clf.iter_detections(detections, card, 0.2), monkeypatch)
    _assert_same_records(together, alone)
    assert [r["filepath"] for r in together] == [e["file"] for e in detections.images]
    assert many.calls < one.calls
    _assert_each_vector_alone(clf, together, many)
    chelsea = together[0]["detections"]
    assert ["predictions" in d for d in chelsea] == [True, False, True]


def test_records_wait_for_their_window_and_keep_their_order():
    calls = []

    def score(rows: np.ndarray) -> list[list[dict]]:
        calls.append(len(rows))
        return [[{"index": int(r[0])}] for r in rows]

    def item(name: str, values: list[int]) -> Waiting:
        vectors = np.array([[v, 0.0] for v in values], np.float32) if values else NO_VECTORS
        return Waiting(vectors, lambda found: {"name": name, "found": [f[0]["index"] for f in found]})

    waiting = [item("a", [1]), item("failed", []), item("video", [2, 3, 4]), item("b", [5]), item("c", [6])]
    out = list(scored_in_windows(iter(waiting), score, 3))
    assert [r["name"] for r in out] == ["a", "failed", "video", "b", "c"]
    assert [r["found"] for r in out] == [[1], [], [2, 3, 4], [5], [6]]
    assert calls == [1, 3, 2]  # a alone (the first prediction comes at once); failed + video reached 3; b and c at the end
    assert list(scored_in_windows(iter([item("x", [])]), score, 3)) == [{"name": "x", "found": []}] and calls == [1, 3, 2]


def test_a_killed_windowed_run_loses_nothing_finished(clf, card, tmp_path, monkeypatch, records_spec):
    monkeypatch.setattr(clf, "score_window", 4)
    items = discover([card])
    order = [it.filepath for it in items]
    out = tmp_path / "run.jsonl"
    fingerprint = {"model": "tiny", "labels": 6}

    def killed(skip):
        for i, record in enumerate(clf.iter_items([it for it in items if it.filepath not in skip])):
            if i == 5:
                raise KeyboardInterrupt
            yield record

    with pytest.raises(KeyboardInterrupt):
        run_job(records_spec(out, order, killed, fingerprint), JobConfig(out=out, checkpoint_images=100, progress=False))
    lines = checkpoint_path(out).read_text().splitlines()
    assert len(lines) == 1 + 5  # every record yielded before the kill; the waiting ones were never yielded
    redone = []

    def rest(skip):
        for record in clf.iter_items([it for it in items if it.filepath not in skip]):
            redone.append(record["filepath"])
            yield record

    run_job(records_spec(out, order, rest, fingerprint), JobConfig(out=out, resume=True, progress=False))
    done_before = {json.loads(line)["filepath"] for line in lines[1:] if not json.loads(line)["failures"]}
    assert not done_before & set(redone)
    assert [json.loads(line)["filepath"] for line in out.read_text().splitlines()] == order
