"""`mdrnn beam-transcribe`: the transcription job on Apache Beam (the beam extra)."""

import functools
import logging
import os

import click

from mdrnn.pipelines.options import (
    echo_failure,
    job_inputs,
    load_recognizer,
    report_job,
    transcription_options,
    user_errors,
)


def _split_beam_options(arguments: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """INPUTS, then Apache Beam's options: everything from the first ``-`` on."""
    split = next((i for i, arg in enumerate(arguments) if arg.startswith("-")), len(arguments))
    return list(arguments[:split]), list(arguments[split:])


class _BeamNotes(logging.Filter):
    """Drops Apache Beam's own log records below ERROR (it logs through the root
    logger: optional cloud clients missing, platform notes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or \
            f"{os.sep}apache_beam{os.sep}" not in record.pathname


@click.command("beam-transcribe", context_settings={"ignore_unknown_options": True})
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS... [BEAM OPTIONS]")
@transcription_options
def beam_transcribe_command(model, inputs, out_dir, output_format, decoding, pages, compute,
                            overwrite):
    """Transcribe as `mdrnn transcribe` does, as an Apache Beam pipeline.

    The same inputs, options and outputs as `mdrnn transcribe`; inputs with
    output are skipped. Failed inputs are error records: in transcriptions.jsonl,
    or in failures.jsonl beside the other formats' files.

    Apache Beam's pipeline options follow the inputs, e.g. --runner=FlinkRunner
    --flink_master=HOST:8081, or --runner=DataflowRunner --project=... The
    workers need mdrnn installed and must see the model, the inputs and the
    output folder under the same paths (a shared mount). Without --runner the
    pipeline runs in this process (FnApiRunner); --direct_num_workers=N
    --direct_running_mode=multi_processing runs it in N local processes.
    Needs the beam extra: pip install "mdrnn[beam]".
    """
    inputs, beam_args = _split_beam_options(inputs)
    if not inputs:
        raise click.UsageError("give the INPUTS before Apache Beam's options")
    if not logging.getLogger().isEnabledFor(logging.INFO):  # without -v
        for handler in logging.getLogger().handlers:
            handler.addFilter(_BeamNotes())
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise click.UsageError('Apache Beam is not installed: pip install "mdrnn[beam]"') \
            from None
    files, problems = job_inputs(inputs, output_format)
    with user_errors():
        # Loaded here once to check the model and options before any worker starts.
        recognizer = load_recognizer(model, decoding, compute)
        from mdrnn.pipelines.beam_job import beam_transcribe
        from mdrnn.pipelines.folder_lock import exclusive_folder

        with exclusive_folder(out_dir):
            try:
                report = beam_transcribe(
                    functools.partial(load_recognizer, model, decoding, compute),
                    recognizer.preprocessing.to_dict(), files, out_dir, output_format,
                    pages=pages, overwrite=overwrite, batch_size=recognizer.batch_size,
                    pipeline_args=beam_args)
            except (ValueError, SystemExit) as error:  # options Beam refuses
                raise click.UsageError(f"Apache Beam options {' '.join(beam_args)}: "
                                       f"{error}") from None
    for _, reason in report.failures:
        echo_failure(reason)
    report_job(report, problems, out_dir)
