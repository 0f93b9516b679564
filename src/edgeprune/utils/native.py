"""Output that native libraries write straight to the process's file descriptors, hidden."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_output_hidden():
    """Send file descriptors 1 and 2 to /dev/null inside the block.

    LiteRT's converter and interpreter log through absl and TFLite's own logger, and ExecuTorch prints its CPU
    probing and thread-pool resets, all from C++ straight to the descriptors, where ``contextlib.redirect_stderr``
    cannot reach: a user would see a dozen internal lines on every export. Errors still raise, and edgeprune
    reports them in one line; Python output inside the block is hidden too.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
