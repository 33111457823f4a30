"""Profiling: machine record, matmul peaks, side-by-side benchmark rows, sizing arithmetic, report folder, CLI.

Benchmarks run on the tiny bundle with sub-second budgets: the tests check that the rows are
consistent with their own latencies and that nothing is dropped, never that something is fast.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bioclip_edge.profiling import machine as M
from bioclip_edge.profiling import sizing as S

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model\t\t: 167
model name\t: Intel(R) Xeon(R) Processor
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 hypervisor

processor\t: 1
model\t\t: 167
model name\t: Intel(R) Xeon(R) Processor
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 hypervisor

processor\t: 2
model name\t: Intel(R) Xeon(R) Processor
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 hypervisor
"""

PI5_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
    f"asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU part\t: 0xd0b\n\n" for i in range(4)
) + "Revision\t: d04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"


def test_parse_cpuinfo_x86_flags_and_cores():
    info = M.parse_cpuinfo(X86_CPUINFO)
    assert info["cpu_model"] == "Intel(R) Xeon(R) Processor"
    assert info["logical_cores"] == 3 and info["physical_cores"] == 2  # two threads share core 0
    isa = M.isa_names(info["flags"])
    assert isa == ("AVX2", "FMA", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16", "AMX", "AMX BF16", "AMX INT8")


def test_parse_cpuinfo_raspberry_pi_5():
    info = M.parse_cpuinfo(PI5_CPUINFO)
    assert info["cpu_model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert info["logical_cores"] == 4
    assert set(M.isa_names(info["flags"])) == {"NEON", "NEON dot product"}


def test_parse_meminfo():
    total, available = M.parse_meminfo("MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   12288000 kB\n")
    assert total == pytest.approx(25.165824) and available == pytest.approx(12.582912)
    assert M.parse_meminfo("garbage") == (None, None)


def test_machine_info_of_this_machine():
    info = M.machine_info()
    assert info.logical_cores and info.logical_cores >= 1
    assert "numpy" in info.versions
    assert info.cpu_model
    d = info.to_dict()
    assert json.loads(json.dumps(d))["isa"] == list(info.isa)
    assert str(info.logical_cores) in info.one_line()


def test_peaks_are_measured_and_failures_are_rows():
    from bioclip_edge.profiling.peak import measure_peaks, peak_for

    peaks = measure_peaks((1,), ("fp32", "int8", "nonsense"), seconds=0.05, shape=(128, 256, 256))
    kinds = {p.kind: p for p in peaks}
    assert kinds["numpy-fp32"].gflops > 0 and kinds["fp32"].gflops > 0
    assert kinds["int8"].gflops > 0
    assert kinds["nonsense"].gflops is None and kinds["nonsense"].error
    assert peak_for(peaks, "fp32", 1) is kinds["fp32"]
    assert peak_for(peaks, "fp32", 2) is None


# --- sizing arithmetic -------------------------------------------------------------------------

HW = S.Hardware("box", "Test box (4 cores)", "cpu", {"fp32": (100.0, 400.0)}, (2.0, 8.0), "made up for the test")


def _input(**kw):
    base = dict(model="m", precision="fp32", gflops_per_image=34.0, efficiency=0.5, efficiency_source="test",
                images_per_day=50_000, weights_gb=0.35, n_labels=1000, embed_dim=512, activations_gb=0.05)
    base.update(kw)
    return S.SizingInput(**base)


def test_sizing_arithmetic_by_hand():
    est = S.estimate(_input(), HW)
    assert est.upper_bound_images_per_sec == (pytest.approx(100 / 34, rel=1e-3), pytest.approx(400 / 34, rel=1e-3))
    assert est.images_per_sec == (pytest.approx(0.5 * 100 / 34, rel=1e-3), pytest.approx(0.5 * 400 / 34, rel=1e-3))
    # slowest rate -> most hours: 50,000 / 1.4706 / 3600 = 9.44 h
    assert est.hours_for_day[0] == pytest.approx(50_000 / (0.5 * 100 / 34) / 3600, rel=1e-3)
    need = 0.35 + 1000 * 512 * 2 / 1e9 + 0.05 + S.RUNTIME_OVERHEAD_GB
    assert est.memory_needed_gb == pytest.approx(need, abs=0.01)
    assert est.fits == "yes"  # 0.80 GB <= 80% of 2 GB


def test_sizing_rule_of_thumb_matches_spec_page_example():
    # the page: at 10,000 effective GFLOP/s, BioCLIP 2 (155 GFLOPs) is about 65 images/sec before overhead
    hw = S.Hardware("x", "x", "gpu", {"fp32": (10_000.0, 10_000.0)}, (80.0, 80.0), "")
    est = S.estimate(_input(gflops_per_image=155.0, efficiency=1.0), hw)
    assert round(est.upper_bound_images_per_sec[0]) == 65


def test_sizing_memory_verdicts():
    big_labels = _input(n_labels=867_000, embed_dim=768)  # TreeOfLife: 1.33 GB of fp16
    assert S.estimate(big_labels, HW).fits.startswith("only with the larger memory options")
    assert S.estimate(_input(weights_gb=9.0), HW).fits == "no"


def test_sizing_refuses_mismatched_precision_and_bad_efficiency():
    with pytest.raises(S.SizingError, match="no sustained GFLOP/s figure for int8"):
        S.estimate(_input(precision="int8"), HW)
    with pytest.raises(S.SizingError, match="efficiency"):
        S.estimate(_input(efficiency=0.0), HW)
    capped = S.estimate(_input(efficiency=1.5), HW)  # a disturbed peak: capped at the rule-of-thumb bound
    assert capped.images_per_sec == capped.upper_bound_images_per_sec and "capped at 1" in capped.notes[0]
    plan = S.size_all(_input(precision="int8"), [HW])
    assert plan.estimates == () and plan.not_sized[0].startswith("box:")


def test_shipped_hardware_table():
    table = S.load_hardware()
    ids = {h.id for h in table}
    assert {"laptop-cpu", "desktop-cpu", "raspberry-pi-5", "jetson-orin-nano", "apple-m-series", "discrete-gpu",
            "datacenter-gpu"} <= ids
    for h in table:
        assert h.peak_note and h.estimate  # every figure says where it comes from and that it is an estimate
        assert all(lo <= hi for lo, hi in h.sustained_gflops.values())
        assert "fp32" in h.sustained_gflops and h.memory_gb[0] <= h.memory_gb[1]
    with pytest.raises(S.SizingError, match="raspberry-pi-5"):
        S.find_hardware("raspbery-pi-5", table)
    assert len(S.find_hardware("all", table)) == len(table)


def test_duration_format():
    assert [S.duration(h) for h in (0.0001, 0.01, 0.5, 3.44, 60)] == ["<1 s", "36 s", "30 min", "3.4 h", "2.5 days"]


def test_assumptions_are_spelled_out():
    lines = S.assumptions(_input(random_weights=True))
    text = " ".join(lines)
    assert "34.00 GFLOPs per image" in text and "efficiency 0.500" in text and "random weights" in text


# --- bench, report and CLI on the tiny bundle --------------------------------------------------

def test_bundle_flops_graph_matches_config(tiny_bundle):
    from bioclip_edge.profiling.flops import count_from_config
    from bioclip_edge.profiling.measure import bundle_flops
    from bioclip_edge.runtime.inference.bundle import Bundle

    bundle = Bundle.open(tiny_bundle)
    cfg = bundle.manifest.model.open_clip_config
    want = count_from_config("tiny", cfg, trimmed_length=20)
    v, t = bundle_flops(bundle, "vision"), bundle_flops(bundle, "text", 20)
    assert (v.matmul_only, v.with_attention) == (want.vision.matmul_only, want.vision.with_attention)
    assert (t.matmul_only, t.with_attention) == (want.text_trimmed.matmul_only, want.text_trimmed.with_attention)
    assert v.uncounted == () and v.analytic_matmul_only == v.matmul_only


@pytest.fixture(scope="module")
def tiny_run(tiny_bundle):
    from bioclip_edge.profiling.bench import BenchSettings
    from bioclip_edge.profiling.measure import profile_bundle

    settings = BenchSettings(warmup=1, min_runs=3, max_runs=5, seconds_per_target=0.1)
    return profile_bundle(tiny_bundle, ("ort", "torch"), ("fp32", "int8", "bf16"), (1, 2), (1,),
                          settings=settings, peak_seconds=0.05)


def test_bench_rows_are_consistent(tiny_run):
    ok = tiny_run.ok_rows()
    assert {(r["backend"], r["precision"], r["batch"]) for r in ok} == {
        ("ort", "fp32", 1), ("ort", "fp32", 2), ("ort", "int8", 1), ("ort", "int8", 2), ("torch", "fp32", 1), ("torch", "fp32", 2)}
    for r in ok:
        assert 3 <= r["runs"] == len(r["latencies_ms"]) <= 5
        assert r["latency_ms_p90"] >= r["latency_ms_median"] >= r["latency_ms_min"] > 0
        assert r["items_per_sec"] == pytest.approx(r["batch"] * 1000 / r["latency_ms_median"], rel=1e-3)
        assert r["effective_gflops"] == pytest.approx(r["gflops_per_item"] * r["items_per_sec"], rel=1e-2)
        assert r["efficiency"] == pytest.approx(r["effective_gflops"] / r["peak_gflops"], rel=1e-2)
        assert r["flop_convention"] == "matmul_only"
    peaks = {(p["kind"], p["threads"]): p for p in tiny_run.peaks}
    assert peaks[("numpy-fp32", None)]["gflops"] > 0
    rounds = max(r["runs"] for r in ok)
    for kind in ("fp32", "int8"):  # timed in every round beside the targets, not in a quiet moment
        assert peaks[(kind, 1)]["gflops"] > 0 and peaks[(kind, 1)]["calls"] == rounds
    int8 = next(r for r in ok if r["precision"] == "int8")
    fp32 = next(r for r in ok if r["precision"] == "fp32" and r["backend"] == "ort")
    assert int8["compute"] == "int8" and int8["peak_gflops"] != fp32["peak_gflops"]  # held to its own peak


def test_bench_keeps_skipped_rows_with_reasons(tiny_run):
    skipped = {r["target"]: r["error"] for r in tiny_run.rows if r["status"] == "skipped"}
    assert "bf16 runs through OpenVINO" in skipped["ort:bf16 vision"]
    assert "fp32 only" in skipped["torch:int8 vision"]


def test_bench_keeps_failed_targets_as_error_rows(tiny_bundle, monkeypatch):
    from bioclip_edge.profiling import runners
    from bioclip_edge.profiling.bench import BenchSettings, plan_targets, run_targets
    from bioclip_edge.runtime.inference.bundle import Bundle

    def broken(bundle, target):
        if target.precision == "int8":
            raise RuntimeError("simulated kernel failure")
        return runners.ort_runner(bundle, target)

    monkeypatch.setitem(runners.RUNNERS, "ort", broken)
    bundle = Bundle.open(tiny_bundle)
    targets, _ = plan_targets(bundle, ("ort",), ("fp32", "int8"), (1,), (1,))
    rows = run_targets(bundle, targets, lambda t: 1e6, lambda t: None, BenchSettings(warmup=1, min_runs=3, max_runs=3))
    by = {r["precision"]: r for r in rows}
    assert by["fp32"]["status"] == "ok" and by["fp32"]["runs"] == 3 and "efficiency" not in by["fp32"]
    assert by["int8"]["status"] == "error" and "simulated kernel failure" in by["int8"]["error"]


def test_report_folder_is_written(tiny_run, tiny_bundle, tmp_path):
    from bioclip_edge.profiling.report import write_report
    from bioclip_edge.profiling.workflow import sizings_for_run
    from bioclip_edge.runtime.inference.bundle import Bundle

    plans = sizings_for_run(tiny_run, Bundle.open(tiny_bundle), ("fp32", "int8"), 20_000, "raspberry-pi-5,discrete-gpu")
    assert [p.input.precision for p in plans] == ["fp32", "int8"], plans
    assert all(len(p.estimates) == 2 for p in plans), [p.not_sized for p in plans]
    out = write_report(tiny_run, tmp_path / "report", plans, 20_000)
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "report.json", "results.csv", "throughput_vs_batch.png", "latency.png"}
    assert not (tmp_path / "report.partial").exists()
    for png in ("throughput_vs_batch.png", "latency.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 10_000
    md = (out / "report.md").read_text()
    for heading in ("## The answer", "## Where it was measured", "## The model", "## Throughput on this machine",
                    "## Sizing: other hardware", "### Assumptions", "## Failed and skipped targets"):
        assert heading in md
    assert "Raspberry Pi 5" in md and "time for 20,000 images" in md
    data = json.loads((out / "report.json").read_text())
    assert len(data["rows"]) == len(tiny_run.rows)
    assert data["sizing"]["plans"][0]["estimates"][0]["hardware"] == "raspberry-pi-5"
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert "items_per_sec" in header and "latencies_ms" not in header
    assert "Many machines" not in md and "scale_out" not in data  # only with a Ray benchmark's result

    from bioclip_edge.profiling.scale_out import scale_out

    out = write_report(tiny_run, tmp_path / "report2", plans, 20_000, scale=scale_out(12.0, 0.95, nodes=(1, 8)))
    md = (out / "report.md").read_text()
    assert "## Many machines (Ray)" in md and "Estimate, not a measurement" in md and "| 8 | 91.2 |" in md
    assert json.loads((out / "report.json").read_text())["scale_out"]["estimate"] is True


def test_cli_flops_and_published_check(tmp_path, capsys):
    from bioclip_edge.cli import main

    out = tmp_path / "flops.json"
    assert main(["profile", "flops", "ViT-B-16", "--text-length", "24", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "33.696" in printed and "35.127" in printed and "matmul-only convention" in printed
    data = json.loads(out.read_text())
    assert data["rows"][0]["label_24tok_gflops_matmul_only"] > 0
    assert {c["quantity"] for c in data["published"]} == {"GFLOPs/image", "GFLOPs/label (77 tokens)", "params (M)"}


def test_cli_size_and_bench(tiny_bundle, tmp_path, capsys):
    from bioclip_edge.cli import main

    out = tmp_path / "size.json"
    rc = main(["profile", "size", str(tiny_bundle), "--efficiency", "0.25", "--hardware", "raspberry-pi-5,laptop-cpu",
               "--images-per-day", "10000", "--json", str(out)])
    assert rc == 0
    plan = json.loads(out.read_text())
    assert [e["hardware"] for e in plan["estimates"]] == ["raspberry-pi-5", "laptop-cpu"]
    assert plan["input"]["efficiency"] == 0.25 and "given with --efficiency" in plan["input"]["efficiency_source"]
    assert main(["profile", "size", str(tiny_bundle), "--efficiency", "0.25", "--hardware", "toaster"]) == 2
    assert "toaster" in capsys.readouterr().err
    rc = main(["profile", "bench", str(tiny_bundle), "--precision", "fp32", "--batch", "1", "--threads", "1",
               "--seconds", "0.001", "--csv", str(tmp_path / "b.csv")])  # the fewest runs: the CLI is what is tested
    assert rc == 0 and "ort:fp32 vision b1 t1" in capsys.readouterr().out
    assert main(["profile", "bench", str(tiny_bundle), "--batch", "one"]) == 2


def test_cli_module_imports_only_the_standard_library():
    code = ("import sys, bioclip_edge.profiling.cli as c, argparse; c.add_arguments(argparse.ArgumentParser()); "
            "print(sorted(m for m in ('numpy', 'onnxruntime', 'torch', 'onnx', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_openvino_runner_is_the_runtime_session_at_a_fixed_shape(tiny_bundle):
    from bioclip_edge.profiling import runners
    from bioclip_edge.profiling.runners import Target
    from bioclip_edge.runtime import Bundle
    from bioclip_edge.runtime.inference.backends import openvino_capabilities

    if not openvino_capabilities():
        pytest.skip("OpenVINO is not installed")
    bundle = Bundle.open(tiny_bundle)
    exact = runners.openvino_runner(bundle, Target("openvino", "vision.fp32", "fp32", "fp32", batch=3, threads=1))()[0]
    ref = runners.ort_runner(bundle, Target("ort", "vision.fp32", "fp32", "fp32", batch=3, threads=1))()[0]
    assert exact.shape == ref.shape == (3, bundle.manifest.model.embed_dim)
    assert (exact * ref).sum(1).min() > 0.99999  # the same random inputs, exact f32 on both


def test_openvino_int8_is_held_to_openvinos_own_int8_peak(tiny_bundle):
    """OpenVINO's int8 kernels (VNNI/AMX) outrun onnxruntime's dynamic int8, so an OpenVINO int8
    target gets its own peak kind, timed on a static QDQ chain in the same rounds."""
    from bioclip_edge.profiling.bench import BenchSettings
    from bioclip_edge.profiling.measure import profile_bundle
    from bioclip_edge.runtime.inference.backends import openvino_capabilities

    if not openvino_capabilities():
        pytest.skip("OpenVINO is not installed")
    run = profile_bundle(tiny_bundle, ("openvino", "ort"), ("int8",), (1,), (1,),
                         settings=BenchSettings(warmup=1, min_runs=3, max_runs=3, seconds_per_target=0.05, pause_s=0.0),
                         peak_seconds=0.05)
    rows = {r["backend"]: r for r in run.ok_rows()}
    assert rows["openvino"]["compute"] == "int8-ov" and rows["ort"]["compute"] == "int8"
    peaks = {(p["kind"], p["backend"]) for p in run.peaks if p.get("gflops")}
    assert {("int8-ov", "openvino"), ("int8", "onnxruntime")} <= peaks
    assert rows["openvino"]["efficiency"] and rows["ort"]["efficiency"]
