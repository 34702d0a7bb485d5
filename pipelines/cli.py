"""The `mdrnn` command: a click group of thin wrappers over the library.

TensorFlow is imported inside the commands only, so `mdrnn --help` answers at once.
"""

import logging

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="mdrnn")
def main(verbose: int, quiet: bool) -> None:
    """Offline handwriting recognition with multidimensional LSTM and CTC."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                         logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
