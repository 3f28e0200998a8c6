"""Windows over a recording, and fitting another sensor to the model's."""

from __future__ import annotations

import numpy as np
import pytest

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events
from edge_snn.runtime.events.windows import fit_sensor, iter_windows, parse_crop, plan_windows


class _Span:
    path = "rec"
    sensor_size = None

    def __init__(self, first, last):
        self.t_first, self.t_last = first, last
        self.asked = []

    def read(self, t0, t1):
        self.asked.append((t0, t1))
        return Events.empty()


def test_plan_counts_windows_from_the_first_event():
    reader = _Span(1_000, 400_999)  # 400 ms of events
    plan = plan_windows(reader, 50_000)
    windows = list(iter_windows(reader, plan))
    assert plan.count == 8 and [w.t_start for w in windows] == [1_000 + 50_000 * k for k in range(8)]
    assert not any(w.partial for w in windows)
    assert plan_windows(_Span(0, 400_000), 50_000).count == 9  # one microsecond more opens a 9th window
    part = plan_windows(reader, 50_000, start_us=100_000, duration_us=120_000)
    assert part.count == 3 and [w.partial for w in iter_windows(reader, part)] == [False, False, True]
    assert reader.asked[-1] == (201_000, 221_000)  # the partial window reads only up to the stop
    with pytest.raises(UserError, match="past the end"):
        plan_windows(reader, 50_000, start_us=10_000_000)
    with pytest.raises(UserError, match="no events"):
        plan_windows(_Span(None, None), 50_000)


def test_sensor_fit_crop_resize_and_errors():
    assert fit_sensor((480, 640), (480, 640)) is None and fit_sensor(None, (480, 640)) is None
    with pytest.raises(UserError, match="--crop.*--resize"):
        fit_sensor((720, 1280), (480, 640))
    crop = fit_sensor((720, 1280), (480, 640), crop="center")
    assert crop.crop == (120, 320)
    moved = crop.apply(Events.of(np.array([320, 0, 959]), np.array([120, 5, 599]), np.array([0, 1, 2]),
                                 np.array([1, 1, 0])))
    assert moved.x.tolist() == [0, 639] and moved.y.tolist() == [0, 479]
    scaled = fit_sensor((960, 1280), (480, 640), resize=True).apply(
        Events.of(np.array([1279, 3]), np.array([959, 2]), np.array([0, 0]), np.array([1, 1])))
    assert scaled.x.tolist() == [639, 1] and scaled.y.tolist() == [479, 1]
    for kwargs, match in (({"resize": True}, "only shrinks"), ({"crop": (0, 0)}, "cannot crop")):
        with pytest.raises(UserError, match=match):
            fit_sensor((260, 346), (480, 640), **kwargs)
    with pytest.raises(UserError, match="outside"):
        fit_sensor((720, 1280), (480, 640), crop=(300, 0))
    with pytest.raises(UserError, match="sensor size"):
        fit_sensor(None, (480, 640), resize=True)
    assert parse_crop("20,147") == (20, 147) and parse_crop("center") == "center"
    with pytest.raises(UserError, match="TOP,LEFT"):
        parse_crop("20x147")
