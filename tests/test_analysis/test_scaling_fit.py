"""Power-law fits, bootstrap intervals and scaling-rate comparisons on synthetic curves
whose exponents are known."""
import numpy as np
import pytest

from ebtvision.analysis import (bootstrap_exponent, compare_scaling_rates, fit_power_law,
                                predict_power_law)


def noisy_curve(a, b, c=0.0, noise=0.03, points=8, seed=0, low=1e3, high=1e6):
    rng = np.random.default_rng(seed)
    x = np.geomspace(low, high, points)
    return x, (a * x**b + c) * np.exp(rng.normal(0, noise, points))


def test_exact_points_give_the_exponent_and_prefactor():
    x = np.array([10.0, 100.0, 1000.0])
    fit = fit_power_law(x, 5.0 * x**-0.25)
    assert fit.b == pytest.approx(-0.25, abs=1e-12)
    assert fit.a == pytest.approx(5.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0)
    assert predict_power_law(fit, 1e4) == pytest.approx(5.0 * 1e4**-0.25)


@pytest.mark.parametrize('b', [-0.35, -0.07, 0.12])
def test_noisy_points_recover_the_exponent_inside_the_interval(b):
    x, y = noisy_curve(3.0, b, seed=int(abs(b) * 100))
    result = bootstrap_exponent(x, y, samples=2000)
    low, high = result['b_interval']
    assert abs(result['fit']['b'] - b) < 0.02
    assert low < b < high
    assert high - low < 0.06  # informative, not a vacuous interval


def test_the_interval_covers_the_truth_about_as_often_as_it_says():
    # 95 % intervals on 4-point sweeps (a short sweep is what a CPU affords): count how
    # often the true exponent is inside over many noisy sweeps.
    covered = 0
    trials = 150
    for seed in range(trials):
        x, y = noisy_curve(2.0, -0.2, noise=0.05, points=4, seed=seed)
        low, high = bootstrap_exponent(x, y, samples=400, seed=seed)['b_interval']
        covered += low <= -0.2 <= high
    assert 0.88 < covered / trials < 0.99  # measured 0.947


def test_case_resampling_also_covers_the_truth():
    x, y = noisy_curve(2.0, -0.3, noise=0.02, points=12, seed=3)
    low, high = bootstrap_exponent(x, y, method='cases', samples=1000)['b_interval']
    assert low < -0.3 < high


def test_the_offset_fit_finds_an_irreducible_loss():
    x, y = noisy_curve(40.0, -0.5, c=1.5, noise=0.002, points=10)
    fit = fit_power_law(x, y, offset=True)
    assert fit.c == pytest.approx(1.5, rel=0.05)
    assert fit.b == pytest.approx(-0.5, abs=0.05)
    # Without the offset the same points look like a much slower power law.
    assert abs(fit_power_law(x, y).b) < 0.2


def test_comparison_reports_the_faster_family_and_its_interval():
    x, fast = noisy_curve(3.0, -0.27, seed=1)
    _, slow = noisy_curve(3.0, -0.20, seed=2)
    result = compare_scaling_rates(x, fast, x, slow, samples=2000)
    assert result['ratio'] == pytest.approx(result['b'] / result['b_baseline'])
    assert result['percent'] == pytest.approx(35, abs=12)
    low, high = result['percent_interval']
    assert low < 35 < high
    assert low > 0  # this much data tells the faster family apart
    # Swapped, the baseline is the faster one: a negative percentage.
    assert compare_scaling_rates(x, slow, x, fast)['percent'] < 0


@pytest.mark.parametrize('x, y, match', [
    ([1, 2, 3], [1, 0, 2], 'metric values > 0'),
    ([1, -2, 3], [1, 1, 2], 'X > 0'),
    ([2, 2, 2], [1, 2, 3], '2 distinct X'),
    ([1, 2], [1, 2, 3], '2 X values for 3'),
])
def test_points_a_power_law_cannot_fit_are_refused(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y)
