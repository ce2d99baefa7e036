from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from passk_plugin.report.labels import label_boxes, place_labels


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def test_labels_in_a_tight_cluster_never_overlap_and_stay_inside():
    rng = np.random.default_rng(0)
    xy = [tuple(p) for p in 0.5 + 0.03 * rng.standard_normal((12, 2))]
    fig = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(*zip(*xy, strict=True), "o")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    anns = place_labels(ax, xy, [f"wise-ft α=0.{i:02d}" for i in range(12)])
    boxes = label_boxes(anns)
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b)
        for x, y in ax.transData.transform(xy):  # no label covers a marker's centre
            assert not (a.x0 < x < a.x1 and a.y0 < y < a.y1)
    # Deterministic: the same input places every label at the same offset.
    fig2 = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(fig2)
    ax2 = fig2.add_subplot()
    ax2.set_xlim(0, 1)
    ax2.set_ylim(0, 1)
    again = place_labels(ax2, xy, [f"wise-ft α=0.{i:02d}" for i in range(12)])
    assert [a.xyann for a in anns] == [a.xyann for a in again]
