from hypothesis import given
from hypothesis import strategies as st

from edgeprune.report import hypervolume, pareto_front


def test_front_and_hypervolume_by_hand():
    pts = [(0.5, 0.9), (0.7, 0.8), (0.6, 0.7), (0.9, 0.5), (0.9, 0.4)]
    assert pareto_front(pts) == [0, 1, 3]
    # strips: [0, .5]x.9 + [.5, .7]x.8 + [.7, .9]x.5
    assert abs(hypervolume(pts) - (0.45 + 0.16 + 0.10)) < 1e-12


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_no_point_dominates_a_front_point_and_hv_is_monotone(pts):
    front = pareto_front(pts)
    for i in front:
        for p in pts:
            assert not (p[0] >= pts[i][0] and p[1] >= pts[i][1] and p != pts[i])
    assert hypervolume(pts) <= hypervolume(pts + [(1.0, 1.0)]) <= 1.0 + 1e-12
    assert abs(hypervolume(pts) - hypervolume([pts[i] for i in front])) < 1e-12
