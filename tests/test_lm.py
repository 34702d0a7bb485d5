"""N-gram language models: building (VariKN), reading ARPA, decoding (flashlight-text), storing."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from mdrnn.decoding import labelling_probability
from mdrnn.errors import InputError
from mdrnn.lm import build_arpa, lm_token, lm_words, read_arpa

pytest.importorskip("varikn")
pytest.importorskip("flashlight.lib.text")

from mdrnn.lm import read_ngrams  # noqa: E402
from mdrnn.lm_automaton import compile_ngrams  # noqa: E402
from mdrnn.lm_decoding import (  # noqa: E402
    FlashlightDecoder,
    LanguageModel,
    attach_lm,
    embedded_lm,
    lm_decoder,
)

ENGINES = ("prefix", "flashlight")

SYMBOLS = (" ", "a", "b", "c")
TEXTS = ["abc abc", "abc cab", "cab abc abc", "abc"] * 20


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "chars.arpa"
    path.write_bytes(build_arpa(TEXTS, order=4))
    return path


def logits_for(rows):
    """Logits (1, T, 5) from per-frame probabilities over blank, space, a, b, c."""
    probs = np.asarray(rows, np.float64)
    return np.log(probs / probs.sum(axis=1, keepdims=True))[None].astype(np.float32)


def test_tokens_name_the_space_and_escape_what_arpa_cannot_hold():
    assert [lm_token(s) for s in ("a", " ", "é", "<s>", "\u00a0", "ab")] == [
        "a", "<space>", "é", "<U+003C+U+0073+U+003E>", "<U+00A0>", "ab"]
    assert lm_words("le chat", "char") == ["l", "e", "<space>", "c", "h", "a", "t"]
    assert lm_words("le  chat", "word") == ["le", "chat"]
    assert lm_words(("saB", "yaM"), "char") == ["saB", "yaM"]


@pytest.mark.parametrize("engine", ENGINES)
def test_symbols_the_texts_lack_get_the_unknown_words_probability(tmp_path, engine):
    """A model fine-tuned on a few lines still reads every symbol of its charset: the
    LM built for it gives those its texts never show the probability of <UNK>."""
    path = tmp_path / "chars.arpa"
    path.write_bytes(build_arpa(TEXTS, order=4, symbols=SYMBOLS + ("d", "é", " ")))
    unigrams = {line.split("\t")[1]: float(line.split("\t")[0])
                for line in path.read_text().split("\\1-grams:")[1].split("\\2-grams:")[0]
                .strip().splitlines()}
    assert unigrams["d"] == unigrams["é"] == unigrams["<UNK>"] < unigrams["a"]
    assert read_arpa(path).counts[0] == len(unigrams)
    decoder = lm_decoder(LanguageModel(path), SYMBOLS + ("d", "é"), engine=engine)
    # Frames over blank, space, a, b, c, d, é: "a" twice, then blank.
    rows = [[0.04, 0.01, 0.9, 0.01, 0.01, 0.02, 0.01]] * 2 + [[0.9] + [0.1 / 6] * 6]
    assert decoder.decode(logits_for(rows), np.array([3]))[0][0] == (2,)  # class 2: "a"


def test_build_writes_tab_separated_arpa_of_the_text(char_lm):
    arpa = read_arpa(char_lm)
    assert arpa.order == 4
    assert {"a", "b", "c", "<space>", "<s>", "</s>"} <= arpa.vocabulary
    assert len(arpa.counts) == 4 and all(c > 0 for c in arpa.counts)
    entries = [line for line in char_lm.read_text().splitlines() if "\t" in line]
    assert len(entries) == sum(arpa.counts)
    assert all(len(e.split("\t")) in (2, 3) for e in entries)


def test_build_refuses_bad_options_and_empty_text():
    with pytest.raises(ValueError, match="order"):
        build_arpa(TEXTS, order=0)
    with pytest.raises(ValueError, match="unit"):
        build_arpa(TEXTS, unit="syllable")
    with pytest.raises(InputError, match="no text"):
        build_arpa(["", "   "], unit="word")


def test_malformed_arpa_files_are_named(tmp_path, char_lm):
    with pytest.raises(InputError, match="no such language model"):
        read_arpa(tmp_path / "missing.arpa")
    plain = tmp_path / "plain.arpa"
    plain.write_text("just some text\n")
    with pytest.raises(InputError, match="plain.arpa: not an ARPA"):
        read_arpa(plain)
    cut = tmp_path / "cut.arpa"
    lines = char_lm.read_text().splitlines()
    cut.write_text("\n".join(lines[:len(lines) // 2]))
    with pytest.raises(InputError, match="cut.arpa: truncated"):
        read_arpa(cut)
    cut.write_text("\n".join(lines[:len(lines) // 2] + ["\\end\\"]))
    with pytest.raises(InputError, match="cut.arpa: the header announces"):
        read_arpa(cut)
    latin = tmp_path / "latin.arpa"
    latin.write_bytes(b"\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\t\xe9t\xe9\n\\end\\\n")
    with pytest.raises(InputError, match="latin.arpa: unreadable"):
        read_arpa(latin)


def test_the_automaton_scores_as_kenlm_does(char_lm):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    tokens = ["<blank>", "<space>", "a", "b", "c"]
    following, score, end = compile_ngrams(read_ngrams(char_lm), tokens)
    kenlm = KenLM(str(char_lm), Dictionary(tokens))
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = rng.integers(1, 5, rng.integers(1, 12))
        state, reference, mine = kenlm.start(False), 0.0, 0.0
        node = 0
        for i in ids:
            state, value = kenlm.score(state, int(i))
            reference += value
            mine += score[node, i]
            node = following[node, i]
        reference += kenlm.finish(state)[1]
        assert mine + end[node] == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_lm_chooses_between_what_the_network_finds_alike(char_lm, engine):
    # Frames read "a", then "b" or "c" at 45/55, then "c": greedy says "acc"
    # (collapsed "ac" + blank + "c"), the LM knows "abc".
    rows = [[0.1, 0.0, 0.9, 0.0, 0.0], [0.1, 0.0, 0.0, 0.40, 0.50], [0.9, 0, 0, 0.05, 0.05],
            [0.1, 0.0, 0.0, 0.0, 0.9]]
    logits = logits_for(np.asarray(rows) + 1e-4)
    plain = lm_decoder(LanguageModel(char_lm, weight=0.0), SYMBOLS, engine=engine)
    [(ids, _)] = plain.decode(logits, [4])
    assert ids == (2, 4, 4)
    with_lm = lm_decoder(LanguageModel(char_lm, weight=1.0), SYMBOLS, engine=engine)
    [(ids, confidence)] = with_lm.decode(logits, [4])
    assert ids == (2, 3, 4)
    expected = labelling_probability(logits, [4], np.array([[2, 3, 4]]), [3])[0]
    assert confidence == pytest.approx(expected)


@pytest.mark.parametrize("engine", ENGINES)
def test_padding_and_empty_lines_change_nothing(char_lm, engine):
    decoder = lm_decoder(LanguageModel(char_lm), SYMBOLS, engine=engine)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (2, 12, 5)).astype(np.float32)
    alone = decoder.decode(logits[:1, :7], [7])
    batched = decoder.decode(logits, [7, 0])
    assert batched[0] == alone[0]
    assert batched[1][0] == () and batched[1][1] == pytest.approx(1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_char_lm_must_know_every_symbol(char_lm, engine):
    with pytest.raises(InputError, match="chars.arpa: the character LM lacks 1 .*'d'"):
        lm_decoder(LanguageModel(char_lm), SYMBOLS + ("d",), engine=engine)


def test_settings_out_of_range_are_refused(char_lm):
    with pytest.raises(ValueError, match="weight"):
        LanguageModel(char_lm, weight=-1)
    with pytest.raises(ValueError, match="unit"):
        LanguageModel(char_lm, unit="phone")


def test_a_word_lm_reads_only_its_words(tmp_path):
    path = tmp_path / "words.arpa"
    path.write_bytes(build_arpa(["abc cab", "cab abc"] * 10, order=2, unit="word"))
    decoder = lm_decoder(LanguageModel(path, unit="word", weight=0.5), SYMBOLS)
    assert isinstance(decoder, FlashlightDecoder)
    # The network's best path is "abb": the lexicon knows "abc" and "cab" only.
    rows = [[0.1, 0, 0.9, 0, 0], [0.9, 0, 0.05, 0.05, 0], [0.1, 0, 0, 0.9, 0],
            [0.9, 0, 0, 0.05, 0.05], [0.1, 0, 0, 0.5, 0.4]]
    [(ids, _)] = decoder.decode(logits_for(np.asarray(rows) + 1e-4), [5])
    assert ids == (2, 3, 4)


def test_a_model_carries_its_lm_through_saving(tmp_path, char_lm):
    import keras
    from tiny import tiny_model

    from mdrnn.datasets.charset import Charset
    from mdrnn.pipelines.recognizer import Recognizer

    model = tiny_model(Charset.from_texts(["ab c"]))
    with embedded_lm(model) as nothing:
        assert nothing is None
    attach_lm(model, char_lm.read_bytes(),
              LanguageModel(char_lm, weight=0.75, bonus=0.5, blank_penalty=1.5))
    model.save(tmp_path / "with-lm.keras")
    loaded = keras.models.load_model(tmp_path / "with-lm.keras", safe_mode=True)
    with embedded_lm(loaded) as stored:
        assert (stored.unit, stored.weight, stored.bonus, stored.blank_penalty) == (
            "char", 0.75, 0.5, 1.5)
        assert stored.path.read_bytes() == char_lm.read_bytes()
    recognizer = Recognizer(loaded, decoder="beam", lm="model")
    assert recognizer.lm_decoder.lm.weight == 0.75
    with pytest.raises(ValueError, match="goes with decoder='beam'"):
        Recognizer(loaded, decoder="greedy", lm="model")


def test_cli_builds_tunes_stores_and_decodes_with_the_lm(tmp_path, model_file):
    from tiny import write_line_folder

    from mdrnn.pipelines.cli import main

    data = write_line_folder(tmp_path / "lines", ["ab c", "ba", "c ab", "abc"] * 2, seed=3)
    runner = CliRunner()
    arpa = tmp_path / "lm.arpa"
    result = runner.invoke(main, ["lm", "build", str(data), "--order", "3", "-o", str(arpa)])
    assert result.exit_code == 0, result.output
    assert read_arpa(arpa).order == 3
    saved = tmp_path / "tuned.keras"
    result = runner.invoke(main, ["lm", "tune", str(model_file), str(data), "--lm", str(arpa),
                                  "--weights", "0.5,1", "--penalties", "0", "--save",
                                  str(saved)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["weight", "bonus", "blank", "CER", "WER",
                                                     "lines/s"]
    rows = {float(line.split()[0]): line.split()[3] for line in result.output.splitlines()[1:4]}
    assert sorted(rows) == [0.0, 0.5, 1.0]
    best = float(result.output.split("best: weight ")[1].split(",")[0])
    assert min(rows.values(), key=lambda cer: float(cer[:-1])) == rows[best]
    # The stored model decodes with its LM and tuned weight by default.
    result = runner.invoke(main, ["evaluate", str(saved), str(data)])
    assert result.exit_code == 0, result.output
    assert re.search(r"CER +([0-9.]+) %", result.output)[1] == rows[best][:-1]
    result = runner.invoke(main, ["evaluate", str(saved), str(data), "--lm", "none",
                                  "--decoder", "beam"])
    assert re.search(r"CER +([0-9.]+) %", result.output)[1] == rows[0.0][:-1]
    result = runner.invoke(main, ["evaluate", str(model_file), str(data), "--decoder", "greedy",
                                  "--lm-weight", "1"])
    assert result.exit_code == 2 and "go with the beam decoder" in result.output
    bad = tmp_path / "bad.arpa"
    bad.write_text("nothing\n")
    result = runner.invoke(main, ["evaluate", str(model_file), str(data), "--lm", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {bad}: not an ARPA language model (no \\data\\ header)"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_blank_penalty_reads_what_the_lm_would_drop(char_lm, engine):
    # "a", then a frame where "b" is less likely than a blank, then "c".
    rows = [[0.1, 0, 0.9, 0, 0], [0.6, 0, 0, 0.4, 0], [0.1, 0, 0, 0, 0.9]]
    logits = logits_for(np.asarray(rows) + 1e-4)
    plain = LanguageModel(char_lm, weight=0.01)
    [(ids, _)] = lm_decoder(plain, SYMBOLS, engine=engine).decode(logits, [3])
    assert ids == (2, 4)
    penalised = LanguageModel(char_lm, weight=0.01, blank_penalty=1.0)
    [(ids, _)] = lm_decoder(penalised, SYMBOLS, engine=engine).decode(logits, [3])
    assert ids == (2, 3, 4)


def test_lm_auto_stores_the_lm_only_when_it_helps(tmp_path, model_file):
    import shutil

    from tiny import write_line_folder

    from mdrnn.datasets.formats import open_source
    from mdrnn.models import load_model
    from mdrnn.pipelines.lm_tune import MIN_GAIN, lm_auto

    samples = open_source(str(write_line_folder(tmp_path / "l", ["ab c", "ba", "c ab"], 4)))
    path = shutil.copy(model_file, tmp_path / "model.keras")
    chosen, trials = lm_auto(path, samples, samples, order=3)
    assert trials[0].weight == 0 and len(trials) == 1 + 7 * 4
    best = min(trials, key=lambda t: (round(t.cer, 6), t.weight))
    kept = best.weight > 0 and best.cer <= (1 - MIN_GAIN) * trials[0].cer
    assert chosen.weight == (best.weight if kept else 0)
    with embedded_lm(load_model(path)) as stored:
        assert (stored is None) == (not kept)
        if stored is not None:
            assert (stored.weight, stored.blank_penalty) == (chosen.weight, chosen.blank_penalty)


def test_without_flashlight_a_model_with_a_word_lm_decodes_greedily(tmp_path, model_file,
                                                                   monkeypatch, caplog):
    from tiny import write_line_folder

    import mdrnn.lm_decoding
    from mdrnn.models import load_model
    from mdrnn.pipelines.cli import main

    words = tmp_path / "words.arpa"
    words.write_bytes(build_arpa(["ab c", "ba", "c ab"] * 5, order=2, unit="word"))
    model = load_model(model_file)
    attach_lm(model, words.read_bytes(), LanguageModel(words, unit="word", weight=5.0))
    model.save(tmp_path / "lm.keras")
    data = str(write_line_folder(tmp_path / "l", ["ab c", "ba", "c ab", "abc"], 5))
    runner = CliRunner()
    greedy = runner.invoke(main, ["evaluate", str(tmp_path / "lm.keras"), data,
                                  "--decoder", "greedy"])
    with_lm = runner.invoke(main, ["evaluate", str(tmp_path / "lm.keras"), data])

    def missing():
        raise InputError("decoding with a language model needs flashlight-text")

    monkeypatch.setattr(mdrnn.lm_decoding, "require_flashlight", missing)
    fallback = runner.invoke(main, ["evaluate", str(tmp_path / "lm.keras"), data])
    assert fallback.exit_code == 0, fallback.output
    assert "carries a word language model, left unused" in caplog.text

    def cer(result):
        return re.search(r"CER +([0-9.]+) %", result.output)[1]

    assert cer(fallback) == cer(greedy) != cer(with_lm)
    result = runner.invoke(main, ["evaluate", str(model_file), data, "--blank-penalty", "1"])
    assert result.exit_code == 2 and "need a language model" in result.output


def test_a_char_lm_needs_no_flashlight_to_decode(char_lm, monkeypatch):
    import mdrnn.lm_decoding

    def missing():
        raise InputError("decoding with a language model needs flashlight-text")

    monkeypatch.setattr(mdrnn.lm_decoding, "require_flashlight", missing)
    decoder = lm_decoder(LanguageModel(char_lm), SYMBOLS)
    [(ids, _)] = decoder.decode(logits_for(np.array([[0.1, 0, 0.9, 0, 0]]) + 1e-4), [1])
    assert ids == (2,)
    with pytest.raises(InputError, match="needs flashlight-text"):
        lm_decoder(LanguageModel(char_lm), SYMBOLS, engine="flashlight")


def test_orders_beyond_kenlm_are_read_by_the_prefix_decoder(tmp_path):
    path = tmp_path / "long.arpa"
    path.write_bytes(build_arpa(TEXTS, order=8, prune=0.0001))
    assert read_arpa(path).order > 6
    [(ids, _)] = lm_decoder(LanguageModel(path), SYMBOLS).decode(
        logits_for(np.array([[0.1, 0, 0.9, 0, 0]]) + 1e-4), [1])
    assert ids == (2,)
    with pytest.raises(InputError, match="long.arpa: a [78]-gram model; flashlight-text's KenLM"):
        lm_decoder(LanguageModel(path), SYMBOLS, engine="flashlight")
