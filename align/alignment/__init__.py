"""Cross-modal alignment of product names and photos: four methods in one registry.

>>> from align.alignment import ALIGNMENTS, fit_alignment, load_alignment
>>> ALIGNMENTS.names()
['cca', 'infonce', 'infonce-graph', 'lstsq']
>>> method = fit_alignment("ws", "infonce-graph")        # doctest: +SKIP
>>> method = load_alignment("ws", "infonce-graph")       # WORKSPACE/alignment/infonce-graph/

Each method is one class in one file (:mod:`~align.alignment.cca`,
:mod:`~align.alignment.lstsq`, :mod:`~align.alignment.infonce`,
:mod:`~align.alignment.infonce_graph`), a subclass of :class:`Alignment` registered in
:data:`ALIGNMENTS`. :mod:`align.alignment.workspace` reads a workspace's paired features
and graph neighbours (:func:`alignment_data`) and fits, saves and loads a method there.
"""

from .base import ALIGNMENTS, Alignment, AlignmentData, AlignmentError, info_nce, recall_at
from .workspace import (
    ALIGNMENT_DIR,
    DEFAULT_METHOD,
    WorkspacePairs,
    alignment_data,
    alignment_path,
    ensure_alignment,
    fit_alignment,
    load_alignment,
)

ALIGNMENTS.register_lazy("cca", "align.alignment.cca:CCAAlignment")
ALIGNMENTS.register_lazy("lstsq", "align.alignment.lstsq:LstsqAlignment")
ALIGNMENTS.register_lazy("infonce", "align.alignment.infonce:InfoNCEAlignment")
ALIGNMENTS.register_lazy("infonce-graph", "align.alignment.infonce_graph:GraphInfoNCEAlignment")

__all__ = [
    "ALIGNMENTS",
    "ALIGNMENT_DIR",
    "Alignment",
    "AlignmentData",
    "AlignmentError",
    "DEFAULT_METHOD",
    "WorkspacePairs",
    "alignment_data",
    "alignment_path",
    "ensure_alignment",
    "fit_alignment",
    "info_nce",
    "load_alignment",
    "recall_at",
]
