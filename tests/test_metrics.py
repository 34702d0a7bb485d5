import pytest

from mdrnn.pipelines.metrics import error_rates, line_errors


def test_line_errors_count_characters_and_words():
    assert line_errors("the cat sat", "the hat sat") == (1, 1)
    assert line_errors("the cat sat", "thecat sat") == (1, 2)
    assert line_errors("", "ab") == (2, 1)


def test_error_rates_are_totals_over_reference_sizes():
    rates = error_rates(["abcd", "ef gh", "x"], ["abcd", "ef gk", ""])
    assert rates.chars == 4 + 5 + 1 and rates.char_errors == 0 + 1 + 1
    assert rates.cer == pytest.approx(2 / 10)
    assert rates.words == 4 and rates.wer == pytest.approx(2 / 4)
    assert rates.line_accuracy == pytest.approx(1 / 3)


def test_token_sequences_are_compared_token_by_token():
    rates = error_rates([("alA", "baM", "kaE")], [("alA", "taM", "kaE")])
    assert (rates.char_errors, rates.chars) == (1, 3)
    assert (rates.word_errors, rates.words) == (1, 1)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        error_rates(["a", "b"], ["a"])


def test_confusions_count_each_edit_of_the_alignment():
    from mdrnn.pipelines.metrics import confusions

    pairs = [("abc", "abd"), ("hello", "helo"), ("x", "xy"), ("abc", "abd"), ("ab", "ab")]
    assert confusions(pairs) == [("c", "d", 2), ("", "y", 1), ("l", "", 1)]
    assert confusions(pairs, top=1) == [("c", "d", 2)]
    assert confusions([(("saB", "yaM"), ("saB", "taB"))]) == [("yaM", "taB", 1)]
