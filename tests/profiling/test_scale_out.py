"""The many-machines estimate: arithmetic written out, and marked as an estimate."""

import pytest

from bioclip_edge.profiling.scale_out import SECONDS_PER_DAY, scale_out


def test_scale_out_multiplies_the_measured_rate_by_nodes_and_efficiency():
    est = scale_out(40.0, 0.95, nodes=(1, 4))
    assert [r.nodes for r in est.rows] == [1, 4]
    assert est.rows[1].images_per_second == pytest.approx(4 * 40.0 * 0.95)
    assert est.rows[0].images_per_day == pytest.approx(40.0 * 0.95 * SECONDS_PER_DAY)
    assert est.to_dict()["estimate"] is True
    text = "\n".join(est.markdown())
    assert "Estimate, not a measurement" in text and "shared file system" in text


def test_scale_out_refuses_rates_that_are_not_measurements():
    with pytest.raises(ValueError, match="positive"):
        scale_out(0.0, 0.9)


def test_the_report_section_reads_a_ray_bench_result(tmp_path):
    import json

    from bioclip_edge.errors import UserError
    from bioclip_edge.profiling.report import _scale_out_section
    from bioclip_edge.profiling.scale_out import from_ray_bench

    (tmp_path / "result.json").write_text(json.dumps({"images_per_second": {"local": 10.0, "ray": 9.5}, "ray_over_local": 0.95}))
    est = from_ray_bench(tmp_path, nodes=(2,))
    assert est.rows[0].images_per_second == pytest.approx(19.0)
    assert "Many machines" in "\n".join(_scale_out_section(est))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="bench_ray"):
        from_ray_bench(tmp_path / "bad.json")
