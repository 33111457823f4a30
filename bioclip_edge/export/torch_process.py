"""The PyTorch stage in a child process: whatever PyTorch allocated leaves with the process.

Why: freeing the model in the exporting process is not enough. After ``run_torch_stage``
returns and its pages are given back, a ViT-L/14 export still holds 2.3 GB (torch and open_clip
loaded, allocator caches, exporter leftovers), and NNCF's quantization then peaks on top of it
(measured 7.5 GB = 4.4x the fp32 weights, against a target of 4x). Here the stage runs in a
``spawn``ed child; the parent, which has not imported torch yet, waits with a small resident set.

The child sends its progress lines and log records back (so the console and ``caplog`` see them
as if the stage ran in this process), then the ``TorchResults`` (plain arrays and file paths), or
the exception it raised. The export's peak memory counts both processes at once: the parent's resident set while it
waited plus the child's own peak (``StageResult.peak_rss_bytes``).
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue as queue_module
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from bioclip_edge.export.resources import current_rss_bytes, peak_rss_bytes

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class TorchStageDied(RuntimeError):
    """The child ended without a result: killed (often by the out-of-memory killer) or crashed."""


@dataclass(frozen=True)
class StageResult:
    results: Any  # torch_stage.TorchResults
    peak_rss_bytes: int  # parent while waiting + the child's own peak: both held at once at worst


def run_torch_stage_in_child(say: Callable[[str], None], *args, **kwargs) -> StageResult:
    """``torch_stage.run_torch_stage(*args, say=..., **kwargs)`` in a spawned child. Every argument
    must pickle (the calibration images come as a picklable loader, not as images)."""
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue()
    child = ctx.Process(target=_child_main, args=(channel, logging.getLogger().getEffectiveLevel(), args, kwargs),
                        name="bioclip-edge-torch-stage", daemon=True)
    waiting_rss = current_rss_bytes() or 0
    child.start()
    try:
        return _relay(channel, child, say, waiting_rss)
    finally:
        if child.is_alive():  # an error or Ctrl-C in the parent: the child's work is of no use
            child.terminate()
        child.join()


def _relay(channel, child, say: Callable[[str], None], waiting_rss: int) -> StageResult:
    """Pass the child's messages on until its result or its exception arrives."""
    while True:
        try:
            kind, payload = channel.get(timeout=POLL_SECONDS)
        except queue_module.Empty:
            if child.is_alive():
                continue
            try:  # what it sent just before exiting may have arrived since the wait ended
                kind, payload = channel.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                raise TorchStageDied(_death_text(child.exitcode)) from None
        if kind == "say":
            say(payload)
        elif kind == "log":
            logging.getLogger(payload.name).handle(payload)
        elif kind == "done":
            results, child_peak = payload
            return StageResult(results, waiting_rss + child_peak)
        else:  # "error"
            raise _exception(payload)


def _death_text(code: int | None) -> str:
    why = "killed by signal 9, most likely out of memory" if code == -9 else f"exit code {code}"
    return (f"the PyTorch stage of the export (loading the model, reference outputs, fp32 ONNX export) "
            f"ended without a result ({why}); nothing was written. Free memory or export on a larger machine.")


def _exception(payload: tuple[bytes | None, str]) -> BaseException:
    pickled, text = payload
    if pickled is not None:
        try:
            return pickle.loads(pickled)
        except Exception:  # noqa: BLE001 - an exception class that does not unpickle: keep its text
            pass
    return RuntimeError(f"the PyTorch stage of the export failed:\n{text}")


class _ChannelHandler(logging.Handler):
    """Sends log records to the parent, formatted as far as pickling needs (args merged in)."""

    def __init__(self, channel):
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        record.exc_info, record.exc_text = None, None
        self.channel.put(("log", record))


def _child_main(channel, level: int, args: tuple, kwargs: dict) -> None:
    """The child: log records and progress to the parent, then the results or the exception."""
    root = logging.getLogger()
    root.handlers[:] = [_ChannelHandler(channel)]
    root.setLevel(level)
    try:
        from bioclip_edge.export.torch_stage import run_torch_stage

        results = run_torch_stage(*args, say=lambda msg: channel.put(("say", msg)), **kwargs)
        channel.put(("done", (results, peak_rss_bytes())))  # the child's own
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent, which raises it
        channel.put(("error", (_pickled(exc), traceback.format_exc())))


def _pickled(exc: BaseException) -> bytes | None:
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:  # noqa: BLE001 - not every exception pickles; the parent gets its text instead
        return None
