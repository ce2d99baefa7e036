from __future__ import annotations

from passk_plugin.report import biasvar, plots
from passk_plugin.report.collect import collect_run

from .conftest import TASK

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_plot_draws_from_a_sweep(synthetic_run):
    records = collect_run(synthetic_run)
    rows = biasvar.bias_variance_rows(records)
    for png in (
        plots.passk_vs_k(records, TASK),
        plots.pass1_vs_passk(records, TASK),
        plots.metric_vs_alpha(records, TASK),
        plots.rho_histograms(records, TASK),
        plots.biasvar_chart(rows, TASK),
    ):
        assert png is not None and png.startswith(PNG) and len(png) > 5000


def test_plots_without_data_return_none(synthetic_run):
    records = collect_run(synthetic_run)
    baseline_only = [r for r in records if r.method == "decoding"]
    assert plots.metric_vs_alpha(baseline_only, TASK) is None  # no alpha sweep
    assert plots.pass1_vs_passk(baseline_only, TASK) is not None  # temperature curve alone
    assert plots.passk_vs_k(records, "other_task") is None
    assert plots.rho_histograms(records, "other_task") is None
    assert plots.biasvar_chart([], TASK) is None


def test_passk_vs_k_forecast_line_from_counts(synthetic_run):
    records = collect_run(synthetic_run)
    with_counts = [r for r in records if r.tasks.get(TASK) and r.tasks[TASK].n is not None]
    assert with_counts, "the synthetic run logs samples, so counts are known"
    task = with_counts[0].tasks[TASK]
    ks, values = plots._forecast_line(task, 4)
    n_min = int(min(task.n))
    assert ks == [2 * n_min, 4 * n_min]
    top = task.metrics[f"pass@{max(task.ks)}"]
    assert top - 0.02 <= values[0] <= values[1] <= 1.0
    assert plots._forecast_line(task, 0) is None
    assert plots.passk_vs_k(records, TASK, forecast_factor=0) != plots.passk_vs_k(records, TASK)
