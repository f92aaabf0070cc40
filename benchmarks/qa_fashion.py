"""Fashion QA, part 2 of ``benchmarks/qa.py``: generated questions over the Fashion graph.

A subset of the catalogue (``--fashion-products`` products with a unique display name, all
five attributes and a photo, seeded) is built with ``examples/fashion.toml`` and encoded
(MiniLM text, EfficientNet-Lite0 images). For ``--fashion-asked`` of them, questions about
colour, season, usage, gender and type are generated in en / de / es / zh from several
templates per language and attribute (:data:`TEMPLATES`), the product named by its display
name; and in the four languages with "this" for the product given by its photo (the
catalogue photo flipped and cropped by 6 %). Each goes through :meth:`Session.ask` (the
path of ``kgf ask`` and ``/ask``). An answer is right when its values are the product's
value of the attribute asked.

The scorer never sees these templates: it is trained on semiPQA dev and on questions
generated from the graph with the templates of :mod:`align.qa_lexicon`, which are disjoint
from :data:`TEMPLATES` (``tests/test_qa_scorers.py`` checks it). Its generic vocabulary of
attribute words (colour / Farbe / color / 颜色, occasion / Anlass / ocasión / 场合, ...)
does share words with these questions: it describes the predicates, not the answers.

**Gaps** (``--fashion-gaps N``, default 40): N more products of the subset lose their season
and usage in a copy of the catalogue (the cells blanked, so the graph has no such edge),
an attribute-completion run is trained on that copy (the five relations, the defaults of
``kgf train --task attribute``) and the same question scorer answers questions about the
missing season and usage by name in the four languages: right when the answer is the
product's true (hidden) value, given as predicted by the attribute model. The attribute
model's own accuracy on those values (``Session.predict``) is printed beside it, so the
question path's losses and the model's are told apart.
"""

from __future__ import annotations

import csv
import random
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

FASHION = Path(__file__).resolve().parents[2] / "shared" / "data" / "products" / "fashion"
MAPPING = Path(__file__).resolve().parents[1] / "examples" / "fashion.toml"
ATTRIBUTES = {  # asked attribute -> (styles.csv column, relation of the graph)
    "colour": ("baseColour", "baseColour"),
    "season": ("season", "season"),
    "usage": ("usage", "usage"),
    "gender": ("gender", "gender"),
    "type": ("articleType", "articleType"),
}
THIS = {"en": "this", "de": "das", "es": "esto", "zh": "这个"}
TEMPLATES = {
    "colour": {
        "en": ["What colour is {p}?", "Which color does {p} come in?", "Tell me the colour of {p}."],
        "de": ["Welche Farbe hat {p}?", "In welcher Farbe gibt es {p}?"],
        "es": ["¿De qué color es {p}?", "¿Qué color tiene {p}?"],
        "zh": ["{p}是什么颜色的？", "{p}有什么颜色？"],
    },
    "season": {
        "en": ["Which season is {p} for?", "Is {p} meant for summer or winter?",
               "In what season should I wear {p}?"],
        "de": ["Für welche Jahreszeit ist {p}?", "In welcher Saison trägt man {p}?"],
        "es": ["¿Para qué temporada es {p}?", "¿En qué estación se usa {p}?"],
        "zh": ["{p}适合哪个季节？", "{p}是哪个季节的？"],
    },
    "usage": {
        "en": ["What occasion is {p} for?", "Is {p} for casual or formal use?",
               "What is {p} meant to be used for?"],
        "de": ["Für welchen Anlass ist {p}?", "Wofür trägt man {p}?"],
        "es": ["¿Para qué ocasión es {p}?", "¿Para qué uso es {p}?"],
        "zh": ["{p}适合什么场合？", "{p}是什么用途的？"],
    },
    "gender": {
        "en": ["Is {p} for men or women?", "Who is {p} made for, men or women?",
               "What gender is {p} for?"],
        "de": ["Ist {p} für Damen oder Herren?", "Für welches Geschlecht ist {p}?"],
        "es": ["¿Es {p} para hombre o para mujer?", "¿Para qué género es {p}?"],
        "zh": ["{p}是男款还是女款？", "{p}适合什么性别？"],
    },
    "type": {
        "en": ["What kind of product is {p}?", "What type of article is {p}?"],
        "de": ["Was für ein Artikel ist {p}?", "Welche Produktart ist {p}?"],
        "es": ["¿Qué tipo de artículo es {p}?", "¿Qué clase de producto es {p}?"],
        "zh": ["{p}是什么类型的商品？", "{p}属于哪类产品？"],
    },
}  # fmt: skip


def subset_rows(n: int, seed: int) -> list[dict]:
    """``n`` seeded rows of styles.csv with a unique display name, the five attributes
    and a photo."""
    with (FASHION / "styles.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = Counter(r["productDisplayName"].strip().lower() for r in rows)
    ok = [r for r in rows if names[r["productDisplayName"].strip().lower()] == 1
          and all(r[c].strip() for c, _ in ATTRIBUTES.values())
          and (FASHION / "images" / r["image"]).is_file()]  # fmt: skip
    random.Random(seed).shuffle(ok)
    return ok[:n]


def build_workspace(work: Path, rows: list[dict]):
    """The subset as a workspace (``examples/fashion.toml``), encoded; returns the Session."""
    from fusion.features import FEATURES_FILE, FeatureSpec
    from kgfusion.cli import main as kgf
    from kgfusion.session import Session

    work.mkdir(parents=True, exist_ok=True)
    table = work / "styles.csv"
    with table.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    images = work / "images"
    if not images.exists():
        images.symlink_to(FASHION / "images")
    ws = work / "ws"
    if (ws / FEATURES_FILE).is_file():  # built and encoded by an earlier run (same subset)
        return Session(ws)
    if kgf(["build", str(table), "--mapping", str(MAPPING), "-o", str(ws), "--overwrite"]) != 0:
        raise SystemExit(f"kgf build {table} failed")
    session = Session(ws)
    started = time.perf_counter()
    session.encode(FeatureSpec(text_encoder="minilm"))
    print(f"  fashion workspace: {len(rows)} products, encoded in "
          f"{time.perf_counter() - started:.0f}s", flush=True)  # fmt: skip
    return session


def photo(work: Path, row: dict) -> Path:
    """The product's catalogue photo, flipped left-right and cropped by 6 % per side."""
    from PIL import Image, ImageOps

    out = work / "photos" / row["image"]
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        img = ImageOps.mirror(Image.open(FASHION / "images" / row["image"]).convert("RGB"))
        w, h = img.size
        dx, dy = round(0.06 * w), round(0.06 * h)
        img.crop((dx, dy, w - dx, h - dy)).resize((w, h)).save(out, quality=90)
    return out


def questions(rows: list[dict], work: Path, seed: int) -> list[tuple]:
    """``(way, language, attribute, question, image or None, row)`` for every asked row:
    by name, one template per language and attribute; by photo, the same in a language
    drawn per attribute."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        name = row["productDisplayName"].strip()
        for att, by_lang in TEMPLATES.items():
            for lang, templates in by_lang.items():
                out.append(("name", lang, att, rng.choice(templates).format(p=name), None, row))
            lang = rng.choice(sorted(by_lang))
            text = rng.choice(by_lang[lang]).format(p=THIS[lang])
            out.append(("photo", lang, att, text, photo(work, row), row))
    return out


def fashion_qa(args, scorer) -> dict[str, float]:
    """Accuracy per language (by name) and from the photo; prints per attribute too."""
    from align.qa_scorer import QA_SCORER_DIR, QAScorer

    if not (FASHION / "styles.csv").is_file() or not MAPPING.is_file():
        print(f"fashion QA skipped: {FASHION} or {MAPPING} missing")
        return {}
    print(f"Fashion QA: {args.fashion_products} products, {args.fashion_asked} asked about",
          flush=True)  # fmt: skip
    rows = subset_rows(args.fashion_products, args.seed)
    work = args.work / f"fashion-{args.fashion_products}-{args.seed}"
    session = build_workspace(work, rows)
    shutil.rmtree(session.path / QA_SCORER_DIR, ignore_errors=True)
    started = time.perf_counter()
    fresh = QAScorer()
    fresh.cache = scorer.cache  # the semiPQA embeddings, already computed
    metrics = session.qa_train([args.train], graph_products=args.graph_products,
                               epochs=args.epochs, seed=args.seed, scorer=fresh)  # fmt: skip
    print(f"  scorer: semiPQA dev + {args.graph_products} products' generated questions, "
          f"{time.perf_counter() - started:.0f}s; hold-out {metrics}", flush=True)  # fmt: skip
    out = ask_all(session, questions(rows[: args.fashion_asked], work, args.seed))
    if args.fashion_gaps:
        out.update(gap_qa(args, session, rows, work))
    return out


GAP_ATTRIBUTES = ("season", "usage")


def gap_qa(args, session, rows: list[dict], work: Path) -> dict[str, float]:
    """Questions about values the catalogue lacks (module docstring): accuracy of the
    answers (``gaps``) and of the attribute model alone (``gaps/model``)."""
    from align.qa_scorer import QA_SCORER_DIR
    from fusion.runs import find_run
    from kg.labels import display_name

    asked = rows[args.fashion_asked : args.fashion_asked + args.fashion_gaps]
    hidden = {r["id"] for r in asked}
    blank = {ATTRIBUTES[a][0]: "" for a in GAP_ATTRIBUTES}
    gaps = build_workspace(work / "gaps", [{**r, **blank} if r["id"] in hidden else r for r in rows])
    if find_run(gaps.path, "gaps") is None:
        started = time.perf_counter()
        gaps.train(task="attribute", relations=[rel for _, rel in ATTRIBUTES.values()],
                   run_name="gaps", progress=False, overwrite=True)  # fmt: skip
        print(f"  gaps: attribute run trained in {time.perf_counter() - started:.0f}s", flush=True)
    shutil.copytree(session.path / QA_SCORER_DIR, gaps.path / QA_SCORER_DIR, dirs_exist_ok=True)
    gaps.forget("answerer")
    rng = random.Random(args.seed)
    right, model = defaultdict(list), []
    base = _product_base(session)
    relations = [ATTRIBUTES[a][1] for a in GAP_ATTRIBUTES]
    best = {(p.node, p.relation): p.values[0][0]  # one pass per relation for every product
            for p in gaps.predict([f"{base}{r['id']}" for r in asked], relations, 1)}  # fmt: skip
    for row in asked:
        for att in GAP_ATTRIBUTES:
            column, relation = ATTRIBUTES[att]
            truth = row[column].strip().lower()
            value = best[(f"{base}{row['id']}", relation)]
            model.append((display_name(gaps.graph, value) or value).lower() == truth)
            for lang, templates in TEMPLATES[att].items():
                answer = gaps.ask(rng.choice(templates).format(p=row["productDisplayName"].strip()))
                ok = answer.answered and answer.model == "attribute model" and \
                    [v.lower() for v in answer.values] == [truth]  # fmt: skip
                for key in ("gaps", f"gaps/{att}", f"gaps/{lang}"):
                    right[key].append(ok)
    per = ", ".join(f"{a} {100 * sum(right[f'gaps/{a}']) / len(right[f'gaps/{a}']):.0f}"
                    for a in (*GAP_ATTRIBUTES, "en", "de", "es", "zh"))  # fmt: skip
    print(f"  gaps  accuracy {100 * sum(right['gaps']) / len(right['gaps']):.1f} ({len(right['gaps'])} "
          f"questions about {len(asked)} products' hidden season and usage, 4 languages; {per}); "
          f"the attribute model alone {100 * sum(model) / len(model):.1f}", flush=True)  # fmt: skip
    return {"gaps": sum(right["gaps"]) / len(right["gaps"]), "gaps/model": sum(model) / len(model)}


def _product_base(session) -> str:
    """The product IRI prefix of the Fashion mapping (``.../product/``)."""
    first = session.graph.node_iris("Product")[0]
    return first.rsplit("/", 1)[0] + "/"


def ask_all(session, items: list[tuple]) -> dict[str, float]:
    right: dict[str, list[bool]] = defaultdict(list)
    found: dict[str, list[bool]] = defaultdict(list)
    started = time.perf_counter()
    for way, lang, att, text, image, row in items:
        answer = session.ask(text, image=image)
        column, _ = ATTRIBUTES[att]
        ok = answer.answered and [v.lower() for v in answer.values] == [row[column].strip().lower()]
        key = lang if way == "name" else "photo"
        right[key].append(ok)
        right[f"{key}/{att}"].append(ok)
        found[key].append((answer.product or "").endswith(f"/product/{row['id']}"))
    seconds = time.perf_counter() - started
    print(f"  {len(items)} questions in {seconds:.0f}s wall", flush=True)
    for key in ("en", "de", "es", "zh", "photo"):
        per = ", ".join(f"{a} {100 * sum(right[f'{key}/{a}']) / len(right[f'{key}/{a}']):.0f}"
                        for a in ATTRIBUTES if right.get(f"{key}/{a}"))  # fmt: skip
        print(f"  {key:5s} accuracy {100 * sum(right[key]) / len(right[key]):.1f} "
              f"(product found {100 * sum(found[key]) / len(found[key]):.1f}; {per})", flush=True)  # fmt: skip
    return {k: sum(v) / len(v) for k, v in right.items() if "/" not in k}
