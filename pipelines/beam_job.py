"""Transcription on Apache Beam: the job of `mdrnn transcribe`, on any Beam runner.

`beam_transcribe` builds and runs one pipeline:

1. the inputs, matched on the launching machine exactly as `mdrnn transcribe`
   matches them (`expand_inputs`), numbered in input order; inputs whose output
   exists are left out unless `overwrite` (a re-run resumes);
2. on the workers, `load_input`: read the image, find a page's lines, prepare
   each line (an input that cannot be read becomes an error record here);
3. `RunInference` with `RecognizerHandler`: each worker process loads the model
   once; Beam hands it batches of prepared lines (up to `WINDOW_BATCHES`
   recogniser batches), which the recogniser sorts by width into its own batches
   of similar widths, runs and decodes;
4. each input's lines gathered again and made into its transcription
   (`assemble`), then written by the writers of `mdrnn transcribe`: the
   per-input files (txt, page, alto) by whichever worker made them, the
   JSON-lines file by one worker, in input order.

A failed input never fails the pipeline: it is an error record, inside the
JSON-lines file (as `mdrnn transcribe` writes it) or, for the per-input formats,
in `FAILURES_NAME` beside the outputs (one JSON record per line, input order).

Paths (inputs, model, output folder) are file-system paths that every worker
sees alike: the local disk for the in-process runner, a shared mount on a
cluster. Apache Beam is an optional dependency (``pip install "mdrnn[beam]"``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from mdrnn.pipelines.atomic import atomic_write
from mdrnn.pipelines.inputs import InputFile
from mdrnn.pipelines.preprocess import preprocess_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.recognizer import WINDOW_BATCHES
from mdrnn.pipelines.transcribe import JobReport, assemble, load_input
from mdrnn.pipelines.writers import JSONL_NAME, open_writer

__all__ = ["FAILURES_NAME", "RecognizerHandler", "beam_transcribe"]

FAILURES_NAME = "failures.jsonl"


class RecognizerHandler(ModelHandler):
    """RunInference's model handler for mdrnn recognisers.

    Examples are prepared lines (2-D float32, `Recognizer.prepare`), predictions
    `LineResult`s, in the batch's order.

    Args:
        make_recognizer: a picklable callable without arguments that loads the
            `Recognizer` (model, decoder, language model); called once per worker
            process.
        max_batch_size: the most lines Beam hands over at once.
    """

    def __init__(self, make_recognizer: Callable, max_batch_size: int):
        super().__init__(min_batch_size=1, max_batch_size=max_batch_size)
        self._make_recognizer = make_recognizer

    def load_model(self):
        return self._make_recognizer()

    def run_inference(self, batch, model, inference_args=None):
        return model.recognize_prepared(list(batch))

    def get_num_bytes(self, batch) -> int:
        return sum(line.nbytes for line in batch)

    def get_metrics_namespace(self) -> str:
        return "mdrnn"


class _Load(beam.DoFn):
    """(index, InputFile) -> (index, LoadedInput without its lines), and on the
    "lines" output ((index, line number), prepared line) per line."""

    def __init__(self, preprocessing: dict, pages: bool):
        self._preprocessing, self._pages = preprocessing, pages

    def setup(self):
        self._config = PreprocessConfig.from_dict(self._preprocessing)

    def _prepare(self, image, columns=False):
        return preprocess_line(image, self._config, columns=columns)

    def process(self, element):
        index, item = element
        loaded = load_input(item, self._prepare, self._pages)
        for number, line in enumerate(loaded.lines):
            yield beam.pvalue.TaggedOutput("lines", ((index, number), line))
        yield index, dataclasses.replace(loaded, lines=[])


def _finish(element, pages: bool):
    """(index, {"input": [loaded], "lines": [(number, result)]}) ->
    (index, item, Transcription or None, error or None)."""
    index, groups = element
    (loaded,) = groups["input"]
    if loaded.error is not None:
        return index, loaded.item, None, loaded.error
    results = [result for _, result in sorted(groups["lines"], key=lambda pair: pair[0])]
    return index, loaded.item, assemble(loaded, results, pages), None


class _WriteFiles(beam.DoFn):
    """Writes each transcription to its own file (txt, page, alto)."""

    def __init__(self, output_format: str, out_dir: str):
        self._format, self._out_dir = output_format, out_dir

    def setup(self):
        self._writer = open_writer(self._format, self._out_dir, overwrite=True)

    def process(self, element):
        _, _, transcription, _ = element
        if transcription is not None:
            self._writer.write(transcription)


def _write_failures(finished: list, path: str) -> None:
    records = [{"source": str(item.path), "error": error}
               for _, item, _, error in sorted(finished, key=lambda row: row[0])]
    if not records:
        return
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    atomic_write(Path(path), text.encode("utf-8"))


def _write_jsonl(finished: list, out_dir: str) -> None:
    with open_writer("jsonl", out_dir) as writer:  # resumes: appends to what is there
        for _, item, transcription, error in sorted(finished, key=lambda row: row[0]):
            if transcription is None:
                writer.write_failure(item, error)
            else:
                writer.write(transcription)


def _failures(path: Path, sources: set[str]) -> list[tuple[Path, str]]:
    """(source, reason) of the error records of `sources` in a JSON-lines file."""
    found = []
    if path.is_file():
        for raw in path.read_bytes().splitlines():
            record = json.loads(raw)
            if "error" in record and record["source"] in sources:
                found.append((Path(record["source"]), record["error"]))
    return found


def _pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline on the runner the options name, else on the in-process FnApiRunner
    (Beam's default runner would first download a runner binary)."""
    if options.view_as(StandardOptions).runner is None:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


def beam_transcribe(make_recognizer: Callable, preprocessing: dict, files: Sequence[InputFile],
                    out_dir: str | Path, output_format: str, *, pages: bool = False,
                    overwrite: bool = False, batch_size: int = 64,
                    pipeline_args: Sequence[str] = ()) -> JobReport:
    """Transcribe image files on Apache Beam into `out_dir`, as `transcribe_files` does.

    Args:
        make_recognizer: picklable, no arguments, returns the `Recognizer`.
        preprocessing: the model's preprocessing settings (`PreprocessConfig.to_dict`).
        files: the inputs (`expand_inputs`).
        out_dir: the output folder.
        output_format: "txt", "jsonl", "page" or "alto".
        pages: inputs are page scans.
        overwrite: redo inputs whose output exists.
        batch_size: the recogniser's batch size (Beam's batches hold a few).
        pipeline_args: Apache Beam pipeline options, e.g. ``["--runner=FlinkRunner"]``.

    Returns:
        The counts and the failures (from the error records this run wrote).
    """
    out_dir = Path(out_dir)
    with open_writer(output_format, out_dir, overwrite=overwrite) as writer:
        todo = [item for item in files if not writer.is_done(item)]
    report = JobReport(len(files), skipped=len(files) - len(todo))
    failures_path = out_dir / (JSONL_NAME if output_format == "jsonl" else FAILURES_NAME)
    if output_format != "jsonl":
        failures_path.unlink(missing_ok=True)  # the last run's: those inputs are retried
    handler = KeyedModelHandler(RecognizerHandler(make_recognizer,
                                                  WINDOW_BATCHES * batch_size))
    with _pipeline(PipelineOptions(list(pipeline_args))) as pipeline:
        loaded = (pipeline | "Inputs" >> beam.Create(list(enumerate(todo)))
                  | "Load" >> beam.ParDo(_Load(preprocessing, pages)).with_outputs(
                      "lines", main="inputs"))
        results = (loaded.lines | "Recognise" >> RunInference(handler)
                   | "ByInput" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1]))))
        finished = ({"input": loaded.inputs, "lines": results}
                    | "Gather" >> beam.CoGroupByKey()
                    | "Assemble" >> beam.Map(_finish, pages))
        if output_format == "jsonl":
            _ = (finished | "All" >> beam.combiners.ToList()
                 | "WriteJsonl" >> beam.Map(_write_jsonl, str(out_dir)))
        else:
            _ = finished | "Write" >> beam.ParDo(_WriteFiles(output_format, str(out_dir)))
            _ = (finished | "Failed" >> beam.Filter(lambda row: row[3] is not None)
                 | "AllFailed" >> beam.combiners.ToList()
                 | "WriteFailures" >> beam.Map(_write_failures, str(failures_path)))
    report.failures = _failures(failures_path, {str(item.path) for item in todo})
    report.done = len(todo) - len(report.failures)
    return report
