"""The one exception type for bad user input (files, labels, arguments)."""


class InputError(ValueError):
    """Bad input from the user: a file that cannot be read, a label that cannot be fitted.

    The message is one line that names the file or sample and the reason; the CLI
    prints it as it is, without a traceback.
    """
