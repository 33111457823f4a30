"""The generated pages' generators: the performance page from the committed results, the manifest's
field tables from the dataclasses."""

from __future__ import annotations

import json
import shutil

from tests.docs.gen import ROOT, load

perf = load("performance")
fields = load("manifest_fields")
RESULTS = ROOT / "docs" / "results"


def test_the_performance_page_renders_the_committed_results_with_their_run_records():
    runs = perf.collect(RESULTS)
    assert runs, "docs/results/ holds no published benchmark results"
    page = perf.render(RESULTS)
    for run in runs:
        assert f"{{#{run.name}}}" in page
        prov = run.provenance
        assert prov, f"{run.name}: published without run.json (benchmarks/run_all.py writes it)"
        assert prov["date"] in page and prov["commit"][:12] in page
        assert prov["machine"]["cpu_model"] in page
        for lib, version in prov["machine"]["versions"].items():
            assert f"{lib} {version}" in page


def test_the_adapt_table_is_read_from_its_json():
    data = json.loads((RESULTS / "adapt" / "results.json").read_text())
    page = perf.render(RESULTS)
    for split, by_shots in data["accuracy"].items():
        for shots, row in by_shots.items():
            line = next(li for li in page.splitlines() if li.startswith(f"| {split} | {shots} |"))
            for value in row.values():
                assert f"{value:.3f}" in line


def test_publish_copies_json_only_and_a_new_benchmark_renders_without_code(tmp_path):
    bench_out = tmp_path / "bench-out"
    shutil.copytree(RESULTS / "adapt", bench_out / "adapt")
    (bench_out / "adapt" / "trained-tiny").mkdir()  # bundles stay behind
    (bench_out / "adapt" / "trained-tiny" / "manifest.json").write_text("{}")
    (bench_out / "newbench").mkdir()
    (bench_out / "newbench" / "result.json").write_text(json.dumps({"images_per_s": 12.5, "rows": [{"batch": 8}]}))
    (bench_out / "empty").mkdir()
    published = tmp_path / "results"
    written = perf.publish(bench_out, published)
    assert sorted(p.relative_to(published).as_posix() for p in written) == [
        "adapt/results.json", "adapt/run.json", "newbench/result.json"]
    page = perf.render(published)
    assert "| images_per_s | 12.500 |" in page and "| rows.0.batch | 8 |" in page
    assert "Run record missing" in page  # newbench has no run.json: said, not invented


def test_every_manifest_field_is_described():
    assert fields.undocumented() == [], "comment the field in the dataclass, or describe it in manifest_fields.EXTRA"
    table = fields.render()
    assert "| `random_weights` | `bool` |" in table and "### DecodeCheck" in table


def test_the_readmes_adapt_rows_are_rows_of_the_published_run():
    """The README shows a few rows of the adapt table: each must be a row the published run renders,
    so a new run that changes a figure fails here until the README is updated."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| ") and " -> " in line]
    assert len(rows) >= 3, "README: the adapt table is gone"
    rendered = set(perf.render(RESULTS).splitlines())
    stale = [row for row in rows if row not in rendered]
    assert not stale, f"README rows not in docs/results/adapt: {stale}"


def test_the_readmes_performance_headline_is_the_published_run():
    """The README quotes the defaults and memory runs: its figures must be those runs' figures."""
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    defaults = json.loads((RESULTS / "defaults" / "defaults.json").read_text())
    e2e = defaults["b16"]["e2e"]
    assert f"{e2e['images_per_s']['defaults_end_to_end']:.1f} images/s end to end" in readme
    assert f"{e2e['ratio']:.2f}x OpenVINO bf16 inference alone" in readme
    assert f"first prediction {defaults['cli']['first_prediction_s']:.2f} s after start" in readme
    memory = json.loads((RESULTS / "memory" / "results.json").read_text())["verdict"]
    assert f"**{memory['rss_mb']:.0f} MB**" in readme and f"{memory['speed_vs_best']:.2f} of the best" in readme
    assert json.loads((RESULTS / "defaults" / "run.json").read_text())["date"][:10] in readme
    million = json.loads((RESULTS / "million" / "results.json").read_text())["formats"]
    rss = sorted(row["peak_rss_mb"] for row in million)
    share = sorted(row["checkpoint_share"] for row in million)
    assert f"**{rss[0]:.0f}-{rss[-1]:.0f} MB** RSS" in readme
    assert f"**{share[0]:.1%}-{share[-1]:.1%}** of the run".replace("%-", "-") in readme
