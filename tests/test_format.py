"""The one number format of the pages: exact numbers at the digits asked for, rare proportions readable,
numbers from draws only to a unit their Monte Carlo error cannot blur, with a number of digits that does not
depend on where the draws happened to put the value."""

import pytest

from analysis.report.format import RESOLUTION, format_number, format_probability, per, relation, shared_digits, stable_digits


@pytest.mark.parametrize("value, digits, printed", [
    (0.86831, 2, "0.87"), (0.0123, 2, "0.012"), (0.0078, 2, "0.0078"), (0.00042, 3, "0.00042"),
    (12.5, None, "12.5"), (1234.0, 2, "1,234"), (None, 2, "—"), (True, 2, "yes"), (7, 2, "7"),
])
def test_exact_numbers_and_rare_proportions(value, digits, printed):
    """A rare event keeps two significant digits ("0.012 (0.0078 to 0.020)", never "0.01 (0.01 to 0.02)")."""
    assert format_number(value, digits) == printed


def test_digits_follow_the_monte_carlo_error_alone():
    """Values either side of a rounding boundary, with the same MCSE, print with the same number of digits
    (a rule that asked whether value ± 2 MCSE rounds alike gave "0.77" on one side and "0.8" on the other)."""
    mcse = 0.0008  # a unit of 0.01 is 12.5 MCSE: two decimals
    assert [format_number(v, 2, mcse) for v in (0.7749, 0.7751, 0.7800)] == ["0.77", "0.78", "0.78"]
    assert stable_digits(mcse, 3) == 2 and stable_digits(0.003, 2) == 1 and stable_digits(None, 2) == 2
    assert format_number(0.7812, 2, 0.003) == format_number(0.7790, 2, 0.003) == "0.8"


def test_a_value_no_decimal_can_hold_is_approximate():
    """MCSE 0.02: a unit of 0.1 is only 5 MCSE, so "≈" and the value to the order of 2 MCSE."""
    assert stable_digits(0.02, 2) is None
    assert format_number(0.68, 2, 0.02) == "≈0.7" and format_number(0.68, 2, 0.06) == "≈1"
    assert format_number(0.31, 2, 0.004) == "0.3"
    assert RESOLUTION * 0.004 <= 0.1


def test_numbers_printed_together_share_the_coarsest_digits():
    assert shared_digits([0.86, 0.72, 0.97], [0.0004, 0.003, 0.0005], 2) == 1
    assert shared_digits([0.86, 0.05, 0.97], [None, None, None], 2) is None  # a rare value keeps its own digits


@pytest.mark.parametrize("value, mcse, printed", [
    (0.868, None, "87"), (0.868, 0.0005, "87"), (0.868, 0.003, "85"), (0.868, 0.008, "90"),
])
def test_per_hundred_is_coarsened_by_the_monte_carlo_error(value, mcse, printed):
    assert per(value, 100, mcse) == printed


def test_a_value_that_rounds_to_zero_has_no_sign():
    """A predictive mean of −0.00007 (a rank correlation, symmetric about 0) printed to one decimal is "0.0",
    not "-0.0"; a negative value that keeps a digit keeps its sign."""
    assert format_number(-7.3e-05, 2, 0.004) == "0.0"
    assert format_number(-0.2357, 2, 0.004) == "-0.2"
    assert format_number(-0.4, 2, 0.3) == "≈0"  # the approximate form too


def test_a_probability_from_draws_never_prints_as_a_certainty():
    """P = 0.98 with MCSE 0.005 keeps one decimal, which would print "1.0": it prints "> 0.95", the bound that
    decimal allows; 0.02 likewise "< 0.05"; an exact 1 (no MCSE) and a value that keeps its digits print as
    numbers, and `relation` puts "= " before a number only."""
    assert format_number(0.98, 2, 0.005) == "1.0"
    assert format_probability(0.98, 2, 0.005) == "> 0.95"
    assert format_probability(0.02, 2, 0.005) == "< 0.05"
    assert format_probability(1.0, 2, None) == "1.00" and format_probability(0.98, 2, None) == "0.98"
    assert format_probability(0.6, 2, 0.005) == "0.6"
    assert format_probability(0.9, 2, 0.3) == "> 0.5"  # no decimal stable: the bound of the whole unit
    assert relation("> 0.95") == "" and relation("0.98") == "= "
