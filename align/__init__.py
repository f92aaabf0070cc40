"""align: link text mentions, records and photos to graph entities, with enriched representations.

>>> from align import Linker, train_linker
>>> train_linker("ws", "tableB.csv", "train.csv", "valid.csv")      # doctest: +SKIP
>>> linker = Linker("ws")                                            # doctest: +SKIP
>>> linker.link_text("Sony PS-LX350H turntable, like new")           # doctest: +SKIP
[Link(mention='Sony PS-LX350H turntable', start=0, end=24, iri='...', ...)]
>>> linker.link_record({"name": "sony ps-lx350h", "price": "99"})   # doctest: +SKIP
>>> train_image_linker("ws", "photos.txt")      # lines: image path, entity id  # doctest: +SKIP
>>> linker.link_image("photo.jpg")                                   # doctest: +SKIP
Link(mention='photo.jpg', start=None, end=None, iri='...', ...)

Pipeline, one module per concern: :mod:`align.base` (:class:`Link`, :class:`LinkerError`,
the config reader), :mod:`align.text` (normalisation, model numbers),
:mod:`align.entities` (the linkable entities and their graph-enriched vectors),
:mod:`align.mentions` (mention detection), :mod:`align.candidates` (BM25 + dense
retrieval), :mod:`align.pair_features` (and :mod:`align.batch_features`, the same features
for a whole batch), :mod:`align.scorer` (learned scorer), :mod:`align.calibration`
(Platt scaling), :mod:`align.pair_decision` (the calibrated pair decision),
:mod:`align.calibrate` (the NIL threshold of linking), :mod:`align.rerank` and
:mod:`align.rerank_train` (the cross-encoder reranker), :mod:`align.evaluate` (P / R / F1
and acc@1 on labelled pairs), :mod:`align.projection` (contrastive fine-tuning), :mod:`align.linker`,
:mod:`align.train` (training from DeepMatcher-layout pairs), :mod:`align.tables` (tables in
and out), :mod:`align.images` (photos: photo and entity towers, nearest-neighbour linking)
and :mod:`align.image_train` (contrastive training from labelled photos); product search:
:mod:`align.alignment` (cross-modal alignment methods), :mod:`align.search_facts` and
:mod:`align.search`.
"""

from .base import Link, LinkerError
from .entities import EntityTable
from .image_train import ImageTrainReport, fit_image_linker, read_photo_list, train_image_linker
from .images import ImageLinker, ImageLinkerConfig, image_files
from .linker import Linker, LinkerConfig
from .mentions import Mention, MentionDetector, record_mention
from .pair_features import FEATURES
from .product_finder import QAError
from .qa import Answer, QuestionAnswerer, ask, product_attributes
from .qa_scorer import QAScorer, QAScorerConfig
from .search import ProductSearch, SearchError, open_search
from .tables import iter_table_links, link_table, read_pairs, read_table
from .train import TrainReport, fit_linker, resolve_ids, train_linker

__all__ = [
    "FEATURES",
    "Answer",
    "QAError",
    "QAScorer",
    "QAScorerConfig",
    "QuestionAnswerer",
    "ask",
    "product_attributes",
    "EntityTable",
    "ImageLinker",
    "ImageLinkerConfig",
    "ImageTrainReport",
    "Link",
    "Linker",
    "LinkerConfig",
    "LinkerError",
    "Mention",
    "MentionDetector",
    "ProductSearch",
    "SearchError",
    "TrainReport",
    "fit_image_linker",
    "fit_linker",
    "image_files",
    "iter_table_links",
    "link_table",
    "open_search",
    "read_pairs",
    "read_photo_list",
    "read_table",
    "record_mention",
    "resolve_ids",
    "train_image_linker",
    "train_linker",
]
