"""Charset: ids 1..K with blank 0, NFC code points or tokens, unknown-symbol policies."""

import json
import unicodedata

import pytest

from mdrnn.datasets.charset import BLANK, Charset, split_symbols
from mdrnn.errors import InputError


def test_ids_are_sorted_symbols_from_one_with_blank_zero():
    cs = Charset.from_texts(["cab", "bad"])
    assert BLANK == 0
    assert cs.symbols == ("a", "b", "c", "d")
    assert cs.num_outputs == 5
    assert cs.encode("dab") == [4, 1, 2]
    assert cs.decode([4, 1, 2]) == "dab"


def test_ids_do_not_depend_on_text_order():
    assert Charset.from_texts(["xyz", "abc"]) == Charset.from_texts(["abc", "zyx"])


def test_decode_drops_blanks_and_rejects_out_of_range_ids():
    cs = Charset.from_texts(["ab"])
    assert cs.decode([0, 1, 0, 0, 2, 0]) == "ab"
    with pytest.raises(ValueError, match="3"):
        cs.decode([3])


def test_unknown_error_lists_the_characters_and_names_the_sample():
    cs = Charset.from_texts(["abc"])
    with pytest.raises(InputError, match=r"line-7: .*'x' \(U\+0078 .*'\\u0301' \(U\+0301 "
                                         r"COMBINING ACUTE ACCENT\)"):
        cs.encode("axbx\u0301", name="line-7")


def test_unknown_skip_and_replace():
    cs = Charset.from_texts(["abc"], replacement="?")
    assert cs.symbols == ("?", "a", "b", "c")
    assert cs.encode("axb", unknown="skip") == [2, 3]
    assert cs.encode("axb", unknown="replace") == [2, 1, 3]
    with pytest.raises(ValueError, match="replacement"):
        Charset.from_texts(["abc"]).encode("x", unknown="replace")
    with pytest.raises(ValueError, match="unknown"):
        cs.encode("a", unknown="ignore")


def test_precomposed_and_combining_accents_are_the_same_symbol():
    decomposed, composed = "cafe\u0301", "caf\u00e9"
    cs = Charset.from_texts([decomposed])
    assert "\u00e9" in cs.symbols and "\u0301" not in cs.symbols
    assert cs.encode(decomposed) == cs.encode(composed)
    assert len(cs.encode(composed)) == 4
    assert cs.decode(cs.encode(decomposed)) == composed


def test_combining_mark_without_precomposed_form_is_its_own_symbol():
    text = "x\u0301"  # no precomposed x-acute exists
    cs = Charset.from_texts([text])
    assert cs.symbols == ("x", "\u0301")
    assert cs.encode(text) == [1, 2]
    assert cs.decode([1, 2]) == text


def test_arabic_in_logical_order_with_shadda_as_a_symbol():
    word = "\u0635\u064a\u0651\u0627\u062f\u0629"  # sad ya shadda alef dal teh-marbuta
    cs = Charset.from_texts([word])
    ids = cs.encode(word)
    # One id per code point, in the stored (reading) order, first letter first.
    assert [cs.symbols[i - 1] for i in ids] == list(word)
    assert cs.decode(ids) == word
    # Marks on one letter in either order are canonically reordered by NFC.
    assert cs.encode("\u0628\u0651\u064e", unknown="skip") == cs.encode(
        "\u0628\u064e\u0651", unknown="skip")
    assert unicodedata.normalize("NFC", "\u0628\u0651\u064e") == "\u0628\u064e\u0651"


def test_token_sequences_are_symbols_and_decode_with_separator():
    shapes = [("saB", "yaM", "aaE"), ("aaA", "laB", "faM", "saE")]
    cs = Charset.from_texts(shapes)
    assert cs.separator == "|"
    assert cs.symbols == ("aaA", "aaE", "faM", "laB", "saB", "saE", "yaM")
    ids = cs.encode(("saB", "yaM", "aaE"))
    assert ids == [5, 7, 2]
    assert cs.decode(ids) == "saB|yaM|aaE"
    assert cs.decode_symbols(ids) == ["saB", "yaM", "aaE"]
    with pytest.raises(InputError, match="'xyZ'"):
        cs.encode(["saB", "xyZ"])


def test_config_round_trips_through_json():
    for cs in (Charset.from_texts(["héllo wörld", "\u0635\u064a\u0651"], replacement="\ufffd"),
               Charset.from_texts([("saB", "yaM")])):
        again = Charset.from_config(json.loads(json.dumps(cs.to_config())))
        assert again == cs
        assert again.encode(cs.symbols) == list(range(1, cs.num_outputs))
        assert again.separator == cs.separator and again.replacement == cs.replacement


def test_bad_configs_and_symbols_are_rejected():
    with pytest.raises(ValueError, match="repeat"):
        Charset(["a", "b", "a"])
    with pytest.raises(ValueError, match="NFC"):
        Charset(["e\u0301"])
    with pytest.raises(ValueError, match="non-empty"):
        Charset(["a", ""])
    with pytest.raises(ValueError, match="not a charset"):
        Charset.from_config({"alphabet": "abc"})


def test_split_symbols():
    assert split_symbols("e\u0301a") == ["\u00e9", "a"]
    assert split_symbols(("aaElaB", "0A")) == ["aaElaB", "0A"]
    with pytest.raises(ValueError):
        split_symbols(["ok", ""])
