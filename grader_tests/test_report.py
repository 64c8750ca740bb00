"""The instructor's report figure (convgrader/report.py), drawn from a small gradebook's frames."""
import pandas as pd

from convgrader.tools import class_report as report


def frames(max_score, scores):
    students = [f"s{i}" for i in range(len(scores))]
    score_frame = pd.DataFrame({"assignment": "01_a", "student": students, "score": scores,
                                "max_score": max_score})
    cells = pd.DataFrame({"assignment": "01_a", "student": students, "test_cell": "test_x",
                          "points": scores, "max_points": max_score})
    return score_frame, report.test_cell_summary(cells)


def test_score_histograms_tick_whole_points_and_whole_students():
    """Scores out of 3 were labelled -0.5, 0.5, 1.5, ... (matplotlib's default ticks)."""
    for max_score, scores in ((3, [0, 1, 3, 3, 2]), (1, [0, 1, 1]), (12, [0, 5, 12, 12])):
        figure = report.draw(*frames(max_score, scores))
        histogram = figure.axes[0]
        for ticks in (histogram.get_xticks(), histogram.get_yticks()):
            assert all(float(t).is_integer() for t in ticks), ticks
        shown = [t for t in histogram.get_xticks() if -0.5 <= t <= max_score + 0.5]
        assert 0 in shown and max_score in shown, shown
