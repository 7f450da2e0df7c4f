"""The project's one error type.

It lives in the lowest package so that every other package can raise it without breaking the
import rules of design.md; `easyocc.runtime.contract.errors` re-exports it.
"""


class EasyOccError(Exception):
    """A bad input, file, rig, manifest or configuration. The message is one line naming the culprit."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
