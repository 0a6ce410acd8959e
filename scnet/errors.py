"""Errors the engine raises for bad input.

Every message says what is wrong, with which file or parameter, and what to
do about it.  They are raised before any output is written.
"""


class SCNetInputError(ValueError):
    """Bad user input (file, shape, parameter).  The CLI prints it and exits 2."""
