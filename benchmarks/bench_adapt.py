"""Few-shot adaptation (``labels adapt``) against zero-shot, SimpleShot, prototypes and a linear probe.

Real embeddings, never random weights: the small *trained* model (``tests/data/trained-tiny``, 15
subjects of scikit-image's sample photos) is exported fp32 and embeds every image. Its zero-shot
top-1 on clean crops is ~98%, so the benchmark adapts it to *camera sites* that it was not trained
on (``tests/helpers/site_photos.py``): ``night`` (infrared-like grey, dark, noisy, soft) and ``dusk``
(warm cast, underexposed, soft), plus ``day`` (the clean crops it knows). A site is an imaging
condition and its own stream of random crops of the same source photos (one per subject, two for
the cat): new framing and light, not new individuals. Same-site splits train and test on disjoint
crop streams of one site; cross-site splits train on one site and test on another.

Per split and shot count (1, 4, 16 labelled images per class, each embedded with adapt's 4 views),
every method is scored on the same embeddings, averaged over 5 random draws of the examples:
- zero-shot: the label texts ("a photo of ...") through the text tower;
- SimpleShot (as in the BioCLIP papers): features centred on the support set's mean and
  L2-normalised, nearest class centroid;
- prototype and clap: ``labels adapt --method prototype|clap`` (``labels.site.fit_rows``);
- logistic regression: scikit-learn's ``LogisticRegression`` on the unit features (C=10), if installed.

Also timed: fitting clap for 6 classes x 16 shots (x 4 views), embedding excluded, SciPy and numpy.

    python benchmarks/bench_adapt.py --out bench-out/adapt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")  # the target: 2 cores (set before numpy loads BLAS)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the trained model and the site looks live with the tests

SHOTS = (1, 4, 16)
POOL = 32  # training images per class and site, from which each draw picks its shots
TEST = 10  # test images per class and site
DRAWS = 5
SPLITS = (("night", "night"), ("dusk", "dusk"), ("night", "dusk"), ("dusk", "night"), ("night", "day"))
METHODS = ("zero-shot", "simpleshot", "prototype", "logreg", "clap")


def export_bundle(out: Path) -> Path:
    from bioclip_edge.export.build import ExportConfig, export_bundle as export
    from bioclip_edge.export.sources import ModelRequest
    from tests.helpers.trained_tiny import DEFAULT_OUT

    if not (out / "manifest.json").is_file():
        export(ExportConfig(request=ModelRequest(f"local-dir:{DEFAULT_OUT}"), out=out, precisions=("fp32",), nncf=False,
                            parity_images=6))
    return out


def embed_sites(bundle_dir: Path) -> dict:
    """Per site: training features [POOL*C, views, dim] with labels, and test features with labels."""
    from bioclip_edge.runtime.images.embedder import ImageEmbedder
    from bioclip_edge.runtime.adaptation.examples import VIEWS, views
    from tests.helpers.site_photos import SITES, site_crops

    embedder = ImageEmbedder(str(bundle_dir), "fp32")
    out = {}
    for site in SITES:
        train, y_train = site_crops(POOL, site, seed=1)
        test, y_test = site_crops(TEST, site, seed=99)
        pixels = np.stack([embedder.transform(v) for im in train for v in views(im)])
        f_train = embedder.embed(pixels).reshape(len(train), len(VIEWS), -1)
        f_test = embedder.embed(np.stack([embedder.transform(im) for im in test]))
        out[site] = (f_train.astype(np.float64), np.array(y_train), f_test.astype(np.float64), np.array(y_test))
    return out


def draw(y: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)])


def predict(method: str, text: np.ndarray, f: np.ndarray, y: np.ndarray, groups: np.ndarray, shots: int,
            f_test: np.ndarray, scale: float) -> np.ndarray:
    """Predicted class per test feature; ``f`` holds every view of the drawn examples."""
    if method == "zero-shot":
        return (f_test @ text.T).argmax(axis=1)
    if method == "simpleshot":
        mu = f.mean(axis=0)
        centred = _unit(f - mu)
        centroids = np.stack([centred[y == c].mean(axis=0) for c in range(len(text))])
        d = ((_unit(f_test - mu)[:, None, :] - centroids[None]) ** 2).sum(axis=2)
        return d.argmin(axis=1)
    if method == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=10.0, max_iter=2000).fit(f, y).predict(f_test)
    from bioclip_edge.runtime.adaptation.examples import EmbeddedExamples
    from bioclip_edge.runtime.adaptation.site import AdaptRequest, fit_rows

    embedded = EmbeddedExamples([str(c) for c in range(len(text))], f, y, groups, np.full(len(text), shots))
    rows, _ = fit_rows(AdaptRequest(None, Path("."), Path("."), method=method), text.astype(np.float32), embedded, scale)
    return (f_test @ np.asarray(rows, np.float64).T).argmax(axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def run_split(sites: dict, train_site: str, test_site: str, text: np.ndarray, scale: float, methods: tuple) -> dict:
    f_pool, y_pool, _, _ = sites[train_site]
    _, _, f_test, y_test = sites[test_site]
    result: dict = {}
    for shots in SHOTS:
        accs: dict[str, list[float]] = {m: [] for m in methods}
        for d in range(DRAWS):
            pick = draw(y_pool, shots, np.random.default_rng(1000 * shots + d))
            views = f_pool.shape[1]
            f = f_pool[pick].reshape(-1, f_pool.shape[2])
            y, groups = np.repeat(y_pool[pick], views), np.repeat(np.arange(len(pick)), views)
            for m in methods:
                accs[m].append(float((predict(m, text, f, y, groups, shots, f_test, scale) == y_test).mean()))
        result[str(shots)] = {m: round(float(np.mean(v)), 4) for m, v in accs.items()}
    return result


def time_clap(sites: dict, text: np.ndarray, scale: float) -> dict:
    """Seconds to fit clap on 6 classes x 16 shots x 4 views (embedding excluded), SciPy and numpy."""
    from bioclip_edge.runtime.adaptation import methods as adapt_math

    f_pool, y_pool, _, _ = sites["night"]
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(y_pool == c), 16, replace=False) for c in range(6)])
    f = f_pool[pick].reshape(-1, f_pool.shape[2])
    y = np.repeat(y_pool[pick], f_pool.shape[1])
    out = {"features": int(len(f)), "classes": 6, "shots": 16, "views": int(f_pool.shape[1])}
    adapt_math.clap_rows(text[:6], f[:12], y[:12], scale)  # warm: SciPy's import is not the fit's time
    for name, minimise in (("scipy", adapt_math._minimise), ("numpy", adapt_math._gradient_descent)):
        started = time.perf_counter()
        fit = adapt_math.clap_rows(text[:6], f, y, scale) if name == "scipy" else _numpy_fit(
            adapt_math, minimise, text[:6], f, y, scale)
        out[name] = {"seconds": round(time.perf_counter() - started, 3), "iterations": fit.iterations}
    return out


def _numpy_fit(adapt_math, minimise, text, f, y, scale):
    saved = adapt_math._minimise
    adapt_math._minimise = minimise  # as on an install without SciPy
    try:
        return adapt_math.clap_rows(text, f, y, scale)
    finally:
        adapt_math._minimise = saved


def table(results: dict, methods: tuple) -> str:
    lines = ["| train -> test | shots | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for split, by_shots in results.items():
        for shots, accs in by_shots.items():
            best = max(accs.values())
            cells = [f"**{accs[m]:.3f}**" if accs[m] == best else f"{accs[m]:.3f}" for m in methods]
            lines.append(f"| {split} | {shots} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench-out/adapt"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.labels.matrix import LabelMatrix
    from tests.helpers.trained_tiny import zero_shot_labels

    bundle = Bundle.open(export_bundle(args.out / "trained-tiny"))
    scale = float(bundle.manifest.model.logit_scale)
    text = np.asarray(LabelMatrix.from_texts(bundle, zero_shot_labels()).matrix, np.float64)
    started = time.perf_counter()
    sites = embed_sites(bundle.root)
    embed_seconds = round(time.perf_counter() - started, 1)
    print(f"embedded the sites in {embed_seconds} s", flush=True)
    try:
        import sklearn  # noqa: F401
        methods = METHODS
    except ImportError:
        methods = tuple(m for m in METHODS if m != "logreg")
    results = {}
    for a, b in SPLITS:
        started = time.perf_counter()
        results[f"{a} -> {b}"] = run_split(sites, a, b, text, scale, methods)
        print(f"{a} -> {b}: {time.perf_counter() - started:.1f} s", flush=True)
    timing = time_clap(sites, text, scale)
    report = {"model": "tests/data/trained-tiny (fp32)", "classes": len(text), "test_per_class": TEST, "draws": DRAWS,
              "embed_seconds": embed_seconds, "accuracy": results, "clap_fit_6x16": timing}
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    md = table(results, methods)
    (args.out / "results.md").write_text(md + "\n")
    print(md)
    print(f"clap fit, 6 classes x 16 shots x 4 views, embedding excluded: {json.dumps(timing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
