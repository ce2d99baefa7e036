"""Point labels on a matplotlib axes that never overlap one another or the markers.

adjustText (the usual library for this) is not a passk dependency and moves labels by an
iterative repulsion whose result depends on floating-point details; the placement here is a
small deterministic search instead: each label, in the order given, tries a fixed list of
positions around its point (eight directions on widening rings) and takes the cheapest, tested in
display coordinates. Covering a marker, a label already placed or leaving the axes is never
worth it while any slot avoids them; crossing an error bar costs a little, and so does distance
from the point. A label placed far out gets a thin leader line.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

# (dx, dy) unit directions in points and the text alignment that keeps the label clear of
# the point: right, up-right, down-right, up, down, left, up-left, down-left.
_DIRECTIONS = (
    ((1.0, 0.0), "left", "center"),
    ((0.8, 0.8), "left", "bottom"),
    ((0.8, -0.8), "left", "top"),
    ((0.0, 1.0), "center", "bottom"),
    ((0.0, -1.0), "center", "top"),
    ((-1.0, 0.0), "right", "center"),
    ((-0.8, 0.8), "right", "bottom"),
    ((-0.8, -0.8), "right", "top"),
)
_RINGS = (5.0, 12.0, 20.0, 30.0, 42.0)  # distance from the point, in points
_DISTANCE_COST = 3.0  # soft cost per pixel of distance, against pixels² of error bar covered
_MARKER_HALF = 4.0  # half the side of the box kept clear around each marker, in points


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Bbox, frame: Bbox) -> float:
    """Area of `box` outside `frame`."""
    return box.width * box.height - _overlap(box, frame)


def place_labels(
    ax: Axes,
    xy: Sequence[tuple[float, float]],
    texts: Sequence[str],
    colours: Sequence[str] | None = None,
    fontsize: float = 7,
    xerr: Sequence[float] | None = None,
    yerr: Sequence[float] | None = None,
) -> list[Annotation]:
    """Annotate each point (data coordinates) with its text; returns the annotations.

    `xerr`/`yerr` (half-widths in data units) make each point's error bars obstacles too.

    Call after everything is plotted and the limits are final: placement measures text in
    display coordinates. The figure needs a canvas (FigureCanvasAgg) attached.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    # A few pixels inside the frame: rendered glyphs can run a little past their measured box.
    frame = ax.get_window_extent(renderer).padded(-3 * px)
    centres = [ax.transData.transform(p) for p in xy]
    half = _MARKER_HALF * px
    obstacles = [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in centres]
    bars: list[Bbox] = []
    thin = 1.5 * px  # error bars are lines: keep a strip this wide clear around each
    for i, (x, y) in enumerate(xy):
        for err, horizontal in ((xerr, True), (yerr, False)):
            if err is None or not err[i]:
                continue
            e = err[i]
            ends = [(x - e, y), (x + e, y)] if horizontal else [(x, y - e), (x, y + e)]
            (x0, y0), (x1, y1) = ax.transData.transform(ends)
            bars.append(Bbox.from_extents(x0 - thin, y0 - thin, x1 + thin, y1 + thin))
    placed: list[Annotation] = []
    for i, (p, text) in enumerate(zip(xy, texts, strict=True)):
        colour = colours[i] if colours else "black"
        probe = ax.annotate(text, p, xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        best: tuple[tuple, tuple[float, float], str, str, float] | None = None
        for ring in _RINGS:
            for (ux, uy), ha, va in _DIRECTIONS:
                offset = (ux * ring, uy * ring)
                probe.set_position(offset)
                probe.set_ha(ha)
                probe.set_va(va)
                box = probe.get_window_extent(renderer)
                hard = sum(_overlap(box, o) for o in obstacles) + _outside(box, frame)
                soft = sum(_overlap(box, b) for b in bars) + _DISTANCE_COST * ring * px
                cost = (hard > 0, hard, soft)
                if best is None or cost < best[0]:
                    best = (cost, offset, ha, va, ring)
        probe.remove()
        assert best is not None
        _, offset, ha, va, ring = best
        # Far from its point a label gets a thin leader line so the pairing stays clear.
        arrow = {"arrowstyle": "-", "color": colour, "lw": 0.6} if ring > _RINGS[1] else None
        ann = ax.annotate(
            text,
            p,
            textcoords="offset points",
            xytext=offset,
            ha=ha,
            va=va,
            fontsize=fontsize,
            color=colour,
            arrowprops=arrow,
        )
        obstacles.append(_text_box(ann, renderer))
        placed.append(ann)
    return placed


def label_boxes(annotations: Sequence[Annotation]) -> list[Bbox]:
    """The text boxes (display coordinates) of placed labels, leader lines left out."""
    if not annotations:
        return []
    renderer = annotations[0].figure.canvas.get_renderer()
    return [_text_box(a, renderer) for a in annotations]


def _text_box(ann: Annotation, renderer) -> Bbox:
    # Annotation.get_window_extent would include the leader line; the text alone is wanted.
    ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer)
