"""Paired t-test bolding on hand-made tables."""

import math

from vaekit.experiments.stats import format_cell, markdown_table, mean_std, paired_best


def test_clear_winner_is_the_only_bold_column():
    cols = {"a": [1.0, 1.1, 0.9, 1.05, 0.95], "b": [2.0, 2.1, 1.9, 2.05, 1.95], "c": [0.0, 0.1, -0.1, 0.05, 0.0]}
    assert paired_best(cols) == {"a": False, "b": True, "c": False}
    assert paired_best(cols, higher_is_better=False) == {"a": False, "b": False, "c": True}


def test_tie_within_noise_is_bold_for_both():
    cols = {"a": [1.0, 2.0, 3.0, 4.0], "b": [1.1, 1.8, 3.2, 3.9]}
    assert paired_best(cols) == {"a": True, "b": True}


def test_pairing_matters():
    # b is always exactly 0.01 above a: unpaired the spread hides it, paired it is significant
    a = [1.0, 5.0, 9.0, 13.0, 17.0]
    b = [v + 0.01 + 0.001 * i for i, v in enumerate(a)]
    assert paired_best({"a": a, "b": b}) == {"a": False, "b": True}


def test_failed_seeds_are_dropped_and_counted():
    assert mean_std([1.0, None, 3.0, float("nan")]) == (2.0, math.sqrt(2))
    assert format_cell([1.0, None, 3.0], bold=True, digits=1) == "**2.0 ± 1.4** (1 missing)"
    # one value has no spread to show ("± 0.0" would claim a spread of zero)
    assert format_cell([2.5, None], bold=False, digits=1) == "2.5 (1 seed) (1 missing)"
    assert format_cell([2.5], bold=False, digits=1) == "2.5 (1 seed)"


def test_markdown_table_layout():
    table = markdown_table({"smtp": {"G": [1.0, 1.2, 0.8], "T": [3.0, 3.1, 2.9]}}, ["G", "T"])
    lines = table.splitlines()
    assert lines[0] == "| Dataset | G | T |" and "**3.000 ± 0.100**" in lines[2] and "**1.000" not in lines[2]


def test_a_small_consistent_gap_at_large_values_is_tested_not_called_equal():
    """Reviewer-found: numpy's default allclose (rtol 1e-5) called a 0.01-nat gap near 1,150 "identical" (p = 1),
    where SciPy's paired t-test gives p = 1e-5."""
    from scipy import stats

    from vaekit.experiments.stats import paired_test

    a = [1140.0, 1150.0, 1155.0, 1160.0, 1170.0]
    b = [v - 0.010 + 0.001 * (-1) ** i for i, v in enumerate(a)]
    p, n = paired_test(a, b)
    assert n == 5 and p == stats.ttest_rel(a, b).pvalue < 1e-4
    assert paired_best({"a": a, "b": b}) == {"a": True, "b": False}
    assert paired_test(a, list(a)) == (1.0, 5)  # the same values: no difference to test


def test_constant_gap_is_significant_without_warnings():
    a = [1.0, 2.0, 3.0]
    assert paired_best({"a": a, "b": [v + 10 for v in a]}) == {"a": False, "b": True}


def test_a_lone_value_is_not_bold_and_non_contenders_never_are():
    """A row with one measured column (Table 4.2's normalised rows) has no "best": bolding it read as a win over
    columns it was never compared with. A column outside ``contenders`` (Table 5.2's raw bound) neither wins nor is
    bold. Mutations caught: the single-column guard or the contenders filter dropped."""
    assert paired_best({"a": [1.0, 2.0, 3.0], "b": [None, None, None]}) == {"a": False, "b": False}
    assert "**" not in markdown_table({"r": {"c": [-150.0, -151.0, -149.0]}}, ["a", "b", "c"])
    cols = {"raw": [10.0, 11.0, 12.0], "x": [1.0, 2.0, 3.5], "y": [1.1, 2.2, 3.3]}
    assert paired_best(cols)["raw"] and not paired_best(cols)["x"]
    assert paired_best(cols, contenders={"x", "y"}) == {"raw": False, "x": True, "y": True}


def test_a_column_of_one_seed_is_not_best_over_columns_of_several():
    """Reviewer-found (partial grids): a 1-seed column with a high value became "best" and, with no pairs to test,
    left every other column un-bold."""
    cols = {"a": [5.0, None, None], "b": [1.0, 1.2, 1.1], "c": [1.05, 1.15, 1.12]}
    assert paired_best(cols) == {"a": False, "b": True, "c": True}


def test_columns_equal_up_to_float_noise_tie_and_report_p_one():
    """Reviewer-found: after paired_best went through paired_test, 1000 vs 1000 - 1e-6 (float noise) read as a
    constant gap (p = 0, not bold); both helpers treat values equal to relative float tolerance as tied."""
    from vaekit.experiments.stats import paired_test

    a = [1000.0, 1001.0, 1002.0]
    b = [v - 1e-6 for v in a]
    assert paired_best({"a": a, "b": b}) == {"a": True, "b": True}
    assert paired_test(a, b) == (1.0, 3)
    assert paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5]) == (0.0, 3)  # a real constant gap stays significant
