"""Files that pretend to be models, for the tests of safe loading: a pickle whose loading would run a command,
and torch.save's bytes of any object."""
import io
import os

import torch


class RunsCode:
    """Pickles as a call of os.system(command): loading it runs the command, so safe loading must refuse it."""

    def __init__(self, command: str = "echo this must never run"):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
