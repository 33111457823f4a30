"""File a ``classify`` output's images into one folder per species: ``sort_files(SortRequest(...))``.

``bioclip-edge sort PREDICTIONS --into DIR`` and ``bioclip-edge sort --undo DIR`` call
``sort_files`` and ``undo_sort``. Modules, in the order a sort runs:

* ``request``: ``SortRequest``, ``Placement``, ``SortResult``, ``UndoResult`` and the errors;
* ``names``: folder and file names every file system accepts;
* ``plan``: the predictions (read by ``evaluation.predictions``, rolled up by ``evaluation.ranks``)
  -> one ``Placement`` per file, clashing names numbered;
* ``journal``: the manifest inside ``--into``, an fsync'd JSON Lines journal written before and
  after every step, so that a killed sort resumes and any sort can be undone;
* ``placing``: hard links, symbolic links, copies verified by SHA-256, never replacing a file;
* ``sorter``: ``sort_files``; ``undo``: ``undo_sort``.
"""

from bioclip_edge.runtime.sorting.request import Placement, SortError, SortRequest, SortResult, UndoResult
from bioclip_edge.runtime.sorting.sorter import sort_files
from bioclip_edge.runtime.sorting.undo import undo_sort

__all__ = ["Placement", "SortError", "SortRequest", "SortResult", "UndoResult", "sort_files", "undo_sort"]
