"""CTC decoders on hand-built outputs, checked against sums over every alignment."""

import itertools
from collections import defaultdict

import numpy as np
import pytest

from mdrnn.decoding import beam_search_decode, greedy_decode, labelling_probability
from mdrnn.errors import InputError
from mdrnn.lexicon import (
    Lexicon,
    lexicon_decode_line,
    lexicon_decode_word,
    word_log_likelihoods,
)


class Letters:
    """A minimal charset: "a".."z" are ids 1..26, the space is 27, blank 0."""

    symbols = "abcdefghijklmnopqrstuvwxyz "

    def encode(self, text):
        return [self.symbols.index(c) + 1 for c in text]

    def decode(self, ids):
        return "".join(self.symbols[i - 1] for i in ids)


LETTERS = Letters()
CLASSES = 28
SPACE = 27


def frames(*spec):
    """Logits (T, 28) whose softmax gives each frame the listed probabilities.

    Each frame is a dict {symbol: probability}, "_" the blank; the remaining
    probability is shared equally by the unlisted classes.
    """
    rows = []
    for probs in spec:
        ids = [0 if s == "_" else LETTERS.encode(s)[0] for s in probs]
        row = np.full(CLASSES, (1.0 - sum(probs.values())) / (CLASSES - len(probs)))
        row[ids] = list(probs.values())
        rows.append(np.log(row))
    return np.array(rows)


def peaked(path, p=0.9):
    """Logits of a best path written as text, "_" the blank, each frame at probability p."""
    return frames(*({s: p} for s in path))


def batch_of(*outputs, garbage=None):
    """Pad (T_b, C) outputs into one batch; padding frames are noise unless garbage is given."""
    lengths = np.array([len(o) for o in outputs])
    rng = np.random.default_rng(3)
    batch = rng.normal(scale=5.0, size=(len(outputs), lengths.max(), outputs[0].shape[1]))
    for b, o in enumerate(outputs):
        batch[b, :len(o)] = o
    return batch, lengths


def collapse(path):
    return tuple(c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c))


def all_labellings(logits):
    """{labelling: probability} of a tiny (T, C) output, summed over every path."""
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    found = defaultdict(float)
    for path in itertools.product(range(probs.shape[1]), repeat=len(probs)):
        found[collapse(path)] += np.prod(probs[np.arange(len(probs)), path])
    return found


def test_greedy_and_beam_read_hand_built_best_paths():
    paths = {"aa_abb": "aab", "_a_a_": "aa", "aaa": "a", "h_e_ll_l_o": "hello", "___": ""}
    logits, lengths = batch_of(*(peaked(p) for p in paths))
    expected = list(paths.values())
    assert [text for text, _ in greedy_decode(logits, lengths, LETTERS)] == expected
    for width in (1, 8):
        decoded = beam_search_decode(logits, lengths, LETTERS, beam_width=width)
        assert [text for text, _ in decoded] == expected
    assert greedy_decode(logits[:1], lengths[:1])[0][0] == (1, 1, 2)


def test_beam_finds_the_labelling_that_beats_the_best_path():
    # Best path "__" has p = 0.36, but "a" sums 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64.
    logits = np.log([[[0.6, 0.4], [0.6, 0.4]]])
    assert greedy_decode(logits, [2]) == [((), pytest.approx(0.36))]  # p(empty) = 0.6 * 0.6
    assert beam_search_decode(logits, [2], beam_width=2) == [((1,), pytest.approx(0.64))]


def test_wide_beam_is_exact_on_tiny_outputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=1.5, size=(6, 4, 3))
    lengths = np.array([4, 4, 4, 3, 2, 1])
    # 64 prefixes hold every labelling of 4 frames over 2 characters: nothing is pruned.
    decoded = beam_search_decode(logits, lengths, beam_width=64)
    for b, (ids, confidence) in enumerate(decoded):
        probs = all_labellings(logits[b, :lengths[b]])
        best = max(probs, key=probs.get)
        assert ids == best
        assert confidence == pytest.approx(probs[best], rel=1e-9)


def test_labelling_probability_equals_the_sum_over_alignments():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 5, 3))
    lengths = np.array([5, 5, 3, 0])
    labels = np.array([[1, 1, 2], [2, 0, 0], [1, 2, 0], [0, 0, 0]])
    label_length = np.array([3, 1, 2, 0])
    probs = labelling_probability(logits, lengths, labels, label_length)
    for b in range(4):
        expected = all_labellings(logits[b, :lengths[b]]).get(
            tuple(labels[b, :label_length[b]]), 0.0) if lengths[b] else 1.0
        assert probs[b] == pytest.approx(expected, rel=1e-9)


def test_padding_beyond_lengths_does_not_change_any_decoder():
    rng = np.random.default_rng(2)
    outputs = [rng.normal(scale=3.0, size=(n, 6)) for n in (12, 7, 3, 0)]
    logits, lengths = batch_of(*outputs)
    lexicon = Lexicon([(1, 2), (2, 2, 3), (4,), (4, 3, 1), (3, 4)])
    decoders = [
        lambda x, n: greedy_decode(x, n),
        lambda x, n: beam_search_decode(x, n, beam_width=4),
        lambda x, n: lexicon_decode_word(x, n, lexicon),
        lambda x, n: lexicon_decode_line(x, n, lexicon, separator=5, beam_width=4),
    ]
    for decode in decoders:
        together = decode(logits, lengths)
        for b, output in enumerate(outputs):
            alone = decode(output[None], [len(output)])[0]
            assert together[b][0] == alone[0]
            assert together[b][1] == pytest.approx(alone[1], rel=1e-9)


def test_lexicon_word_picks_the_listed_word_where_greedy_does_not():
    logits = frames({"c": 0.9}, {"q": 0.5, "a": 0.3, "o": 0.15}, {"t": 0.9})
    assert greedy_decode(logits[None], [3], LETTERS)[0][0] == "cqt"
    words = ["cat", "cot", "dog", "at"]
    lexicon = Lexicon(words, LETTERS)
    [(text, confidence)] = lexicon_decode_word(logits[None], [3], lexicon, LETTERS)
    assert text == "cat"
    labels = np.zeros((4, 3), int)
    for i, word in enumerate(words):
        labels[i, :len(word)] = LETTERS.encode(word)
    probs = labelling_probability(np.repeat(logits[None], 4, 0), [3] * 4, labels,
                                  [len(w) for w in words])
    assert confidence == pytest.approx(probs[0] / probs.sum(), rel=1e-9)
    assert 0.6 < confidence < 0.7  # about 0.3 / (0.3 + 0.15)


def test_word_log_likelihoods_match_the_sum_over_alignments():
    # Shared prefixes, entries that are prefixes of others, repeated letters.
    entries = [(1,), (1, 2), (1, 2, 2), (1, 1, 2), (2,), (2, 1), (2, 1, 2), (1, 1, 1, 1)]
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=2.0, size=(3, 6, 3))
    lengths = np.array([6, 5, 2])
    scores = word_log_likelihoods(logits, lengths, Lexicon(entries))
    for b in range(3):
        probs = all_labellings(logits[b, :lengths[b]])
        expected = [probs.get(entry, 0.0) for entry in entries]
        np.testing.assert_allclose(np.exp(scores[b]), expected, rtol=1e-9, atol=1e-300)
    assert scores[2, entries.index((1, 1, 2))] == -np.inf  # needs 4 frames, has 2


def test_lexicon_line_reads_only_listed_words():
    lexicon = Lexicon(["to", "be", "or", "not"], LETTERS)
    logits = frames({"t": 0.9}, {"o": 0.9}, {" ": 0.9}, {"h": 0.5, "b": 0.4}, {"e": 0.9})
    assert greedy_decode(logits[None], [5], LETTERS)[0][0] == "to he"
    [(text, confidence)] = lexicon_decode_line(logits[None], [5], lexicon, SPACE, LETTERS)
    assert text == "to be"
    expected = labelling_probability(logits[None], [5], [LETTERS.encode("to be")], [5])[0]
    assert confidence == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("width", [1, 16])
def test_lexicon_line_never_ends_inside_a_word(width):
    # The output reads "ab c": "c" only begins "cd", so the line is cut back to "ab".
    lexicon = Lexicon(["ab", "cd"], LETTERS)
    logits = peaked("ab_ c")
    decoded = lexicon_decode_line(logits[None], [5], lexicon, SPACE, LETTERS, beam_width=width)
    assert decoded[0][0] == "ab"


def test_confidences_are_probabilities_and_rank_peaked_above_flat():
    flat = np.zeros((1, 6, CLASSES))
    sharp = peaked("c_a_t_", p=0.95)[None]
    lexicon = Lexicon(["cat", "act", "tac"], LETTERS)
    decoders = [
        lambda x: greedy_decode(x, [6]),
        lambda x: beam_search_decode(x, [6], beam_width=4),
        lambda x: lexicon_decode_word(x, [6], lexicon),
        lambda x: lexicon_decode_line(x, [6], lexicon, SPACE, beam_width=4),
    ]
    rng = np.random.default_rng(5)
    noisy = [rng.normal(scale=s, size=(1, 6, CLASSES)).astype(np.float16) for s in (0.1, 3, 30)]
    for decode in decoders:
        assert decode(sharp)[0][1] > decode(flat)[0][1]
        for logits in [flat, sharp, *noisy]:
            assert 0.0 <= decode(logits)[0][1] <= 1.0
    assert greedy_decode(flat, [6])[0][1] == pytest.approx(CLASSES ** -6)  # p(empty)
    assert lexicon_decode_word(flat, [6], lexicon)[0][1] == pytest.approx(1 / 3)


def test_greedy_gives_one_peak_confidence_per_character():
    logits = frames({"a": 0.7}, {"a": 0.9}, {"_": 0.6}, {"a": 0.8}, {"b": 0.5})
    [(text, confidence, per_char)] = greedy_decode(logits[None], [5], LETTERS, per_char=True)
    assert text == "aab"
    np.testing.assert_allclose(per_char, [0.9, 0.8, 0.5])
    expected = labelling_probability(logits[None], [5], [[1, 1, 2]], [3])[0]
    assert confidence == pytest.approx(expected) and 0 < expected < 1


def test_empty_outputs():
    logits = np.zeros((1, 3, 4))
    assert greedy_decode(logits, [0]) == [((), 1.0)]
    assert beam_search_decode(logits, [0]) == [((), 1.0)]
    assert lexicon_decode_word(logits, [0], Lexicon([(1,)])) == [((), 0.0)]


def test_lexicon_entries_and_their_errors():
    lexicon = Lexicon(["ab", (1, 2), "ba", "ab"], LETTERS)
    assert lexicon.entries == ((1, 2), (2, 1))
    with pytest.raises(InputError, match="entry 1 .* empty"):
        Lexicon(["ab", ""], LETTERS)
    with pytest.raises(InputError, match="entry 0 .*blank"):
        Lexicon([(0, 1)])
    with pytest.raises(ValueError, match="pass a charset"):
        Lexicon(["ab"])
    logits = np.zeros((1, 4, CLASSES))
    with pytest.raises(InputError, match=r"entry 1 \(\(1, 27\)\) contains the separator"):
        lexicon_decode_line(logits, [4], Lexicon(["ab", "a "], LETTERS), SPACE)
    with pytest.raises(ValueError, match="uses id 3, the logits have only 3 classes"):
        lexicon_decode_word(np.zeros((1, 4, 3)), [4], Lexicon(["abc"], LETTERS))


def test_bad_logits_or_lengths_are_refused():
    with pytest.raises(ValueError, match="lengths must lie in 0..4"):
        greedy_decode(np.zeros((1, 4, 3)), [5])
    with pytest.raises(ValueError, match="NaN"):
        beam_search_decode(np.full((1, 4, 3), np.nan), [4])
    with pytest.raises(ValueError, match="beam_width"):
        beam_search_decode(np.zeros((1, 4, 3)), [4], beam_width=0)
