"""Multilingual training questions for the question scorer, generated from a catalogue.

A catalogue without labelled shopper questions still has its own attribute names ("base
colour", "usage") and values ("Summer", "Casual"). :func:`generated_questions` turns them
into training questions in English, German, Spanish and Chinese:

- **concept questions**: the attribute's name is matched (by its words) to a concept of the
  small, generic e-commerce vocabulary :data:`CONCEPTS` (colour, season, occasion, gender,
  product type, size, material, brand, price, year, name, weight), whose words in each
  language fill the templates of :data:`TEMPLATES` ("Kannst du mir die Farbe nennen?"),
  or a question word that asks for the concept by itself (:data:`ASKING`: "Wofür braucht
  man das?");
  an attribute matching no concept is asked in English with its own words;
- **value questions**: "is it {value} or {other value}?" in each language
  (:data:`CHOICE_TEMPLATES`), the values taken from the attribute's range in the catalogue
  (:attr:`align.qa_scorer.Candidate.about`), so a question that names a value ("summer or
  winter?") points to the attribute that holds such values.

The vocabulary is generic (not written for one catalogue, and it names no answer), and the
templates are deliberately not those of the Fashion QA benchmark
(``benchmarks/qa_fashion.py``): the benchmark measures phrasings the scorer was not trained
on.
"""

from __future__ import annotations

import random

from .qa_scorer import Candidate, Question

LANGUAGES = ("en", "de", "es", "zh")

#: concept -> language -> words (the first English word also names the concept).
CONCEPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "colour": {"en": ("colour", "color", "shade"), "de": ("Farbe", "Farbton"),
               "es": ("color", "tono"), "zh": ("颜色", "色彩")},
    "season": {"en": ("season", "time of year", "weather"), "de": ("Jahreszeit", "Saison", "Wetter"),
               "es": ("temporada", "estación del año", "época"), "zh": ("季节", "季")},
    "usage": {"en": ("usage", "occasion", "use", "purpose"),
              "de": ("Anlass", "Verwendung", "Zweck", "Einsatz"),
              "es": ("ocasión", "uso", "propósito"), "zh": ("场合", "用途", "用处")},
    "gender": {"en": ("gender", "men or women", "sex"),
               "de": ("Geschlecht", "Damen oder Herren", "Männer oder Frauen"),
               "es": ("género", "hombre o mujer", "sexo"), "zh": ("性别", "男女", "男款女款")},
    "type": {"en": ("type", "kind of product", "category", "article type"),
             "de": ("Art", "Produktart", "Kategorie", "Artikelart", "Produkttyp"),
             "es": ("tipo", "clase de artículo", "categoría"), "zh": ("类型", "种类", "类别", "品类")},
    "size": {"en": ("size", "dimensions"), "de": ("Größe", "Maße"), "es": ("talla", "tamaño"),
             "zh": ("尺码", "尺寸")},
    "material": {"en": ("material", "fabric"), "de": ("Material", "Stoff"),
                 "es": ("material", "tela"), "zh": ("材质", "面料")},
    "brand": {"en": ("brand", "maker"), "de": ("Marke", "Hersteller"), "es": ("marca", "fabricante"),
              "zh": ("品牌", "牌子")},
    "price": {"en": ("price", "cost"), "de": ("Preis", "Kosten"), "es": ("precio", "coste"),
              "zh": ("价格", "价钱")},
    "year": {"en": ("year", "release year"), "de": ("Jahr", "Erscheinungsjahr"),
             "es": ("año", "año de lanzamiento"), "zh": ("年份", "年")},
    "name": {"en": ("name", "title"), "de": ("Name", "Bezeichnung"), "es": ("nombre", "título"),
             "zh": ("名称", "名字")},
    "weight": {"en": ("weight",), "de": ("Gewicht",), "es": ("peso",), "zh": ("重量",)},
}  # fmt: skip

#: Question words that ask for a concept on their own, with no word for the concept
#: ("Wofür ...?", what for: the occasion or use; "Wann ...?", when: the season), per
#: language where such a word is unambiguous (the Spanish "para qué" also starts "para qué
#: temporada", so it is not one). They describe the predicate too (:func:`concept_words`).
ASKING: dict[str, dict[str, tuple[str, ...]]] = {
    "usage": {"de": ("Wofür", "Wozu"), "zh": ("干什么", "做什么")},
    "season": {"en": ("When",), "de": ("Wann",), "es": ("Cuándo",), "zh": ("什么时候",)},
}  # fmt: skip

#: Templates for those question words (``{w}``), in the impersonal forms shoppers use (the
#: German "man", one, is no gender). Not the benchmark's.
ASKING_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("{w} would one need it?", "{w} is it needed?"),
    "de": ("{w} braucht man das?", "{w} ist das gedacht?", "{w} nimmt man es?"),
    "es": ("¿{w} se necesita?", "¿{w} lo necesito?"),
    "zh": ("这个{w}用？", "一般{w}用它？"),
}  # fmt: skip

#: Concept-word templates per language (``{c}`` the concept's word). Not the benchmark's.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("{c}?", "I'd like to know the {c}.", "could you tell me its {c}?",
           "any info on the {c} of it?", "please give the {c}"),
    "de": ("{c}?", "Ich möchte die {c} wissen.", "Kannst du mir die {c} nennen?",
           "Infos zur {c} bitte", "Sag mir etwas über {c}.", "Was weiß man über die {c}?"),
    "es": ("¿{c}?", "Quiero saber: {c}.", "¿Qué me dices de {c}?", "Información sobre {c}, por favor",
           "Necesito conocer su {c}."),
    "zh": ("{c}？", "请告诉我它的{c}。", "我想知道{c}。", "它的{c}是？", "麻烦说一下{c}"),
}  # fmt: skip

#: Value-choice templates per language (``{a}``, ``{b}``: two values of the attribute).
CHOICE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("{a} or {b}?", "is it rather {a} or {b}", "would you say {a} or {b}?"),
    "de": ("{a} oder {b}?", "Eher {a} oder {b}?"),
    "es": ("¿{a} o {b}?", "¿Es más bien {a} o {b}?"),
    "zh": ("{a}还是{b}？", "是{a}还是{b}"),
}  # fmt: skip

#: English templates for an attribute that matches no concept (``{key}``: its words).
ENGLISH_TEMPLATES = (
    "what is the {key} of this?",
    "which {key} does it have?",
    "can you tell me the {key}?",
    "{key}?",
)


def concept_of(key: str) -> str | None:
    """The concept of :data:`CONCEPTS` whose English words occur in an attribute's words
    (``base colour`` -> ``colour``, ``article type`` -> ``type``), or None. The longest
    matching word wins."""
    padded = f" {key.lower()} "
    best, length = None, 0
    for concept, words in CONCEPTS.items():
        for word in (concept, *words["en"]):
            if f" {word} " in padded and len(word) > length:
                best, length = concept, len(word)
    return best


def concept_words(key: str) -> str:
    """The words of ``key``'s concept in every language but the key itself, joined
    (``usage`` -> ``occasion, use, purpose, Anlass, ..., 场合, 用途, 用处``); empty when the
    key matches no concept. They describe the predicate to the scorer (``Candidate.aka``)."""
    concept = concept_of(key)
    if concept is None:
        return ""
    asking = ASKING.get(concept, {})
    words = [w for lang in LANGUAGES for w in CONCEPTS[concept][lang] + asking.get(lang, ())]
    return ", ".join(w for w in dict.fromkeys(words) if w.lower() != key.lower())


def _choice(rng: random.Random, cand: Candidate, lang: str) -> str | None:
    values = [v.strip() for v in cand.about.split(",") if v.strip()]
    own = cand.value.split(",")[0].strip()
    others = [v for v in values if v.lower() != own.lower()]
    if not own or not others:
        return None
    a, b = own, rng.choice(others)
    if rng.random() < 0.5:
        a, b = b, a
    return rng.choice(CHOICE_TEMPLATES[lang]).format(a=a, b=b)


def _concept_question(rng: random.Random, concept: str, lang: str) -> str:
    """One question about ``concept`` in ``lang``: a concept-word template, or (one time in
    three, where the concept has them) a question word of :data:`ASKING`."""
    asking = ASKING.get(concept, {}).get(lang, ())
    if asking and rng.random() < 1 / 3:
        return rng.choice(ASKING_TEMPLATES[lang]).format(w=rng.choice(asking))
    return rng.choice(TEMPLATES[lang]).format(c=rng.choice(CONCEPTS[concept][lang]))


def attribute_questions(rng: random.Random, cand: Candidate,
                        languages=LANGUAGES) -> list[str]:  # fmt: skip
    """Generated questions about one attribute: one concept (or English name) question per
    language, and one value-choice question in a language drawn at random."""
    concept = concept_of(cand.key)
    if concept is None:
        out = [rng.choice(ENGLISH_TEMPLATES).format(key=cand.key)]
    else:
        out = [_concept_question(rng, concept, lang) for lang in languages]
    choice = _choice(rng, cand, rng.choice(list(languages)))
    return out + ([choice] if choice else [])


def generated_questions(candidates_of, products: list[str], seed: int = 0,
                        languages=LANGUAGES) -> list[Question]:  # fmt: skip
    """Labelled questions about ``products``: for each product and attribute (its
    :class:`Candidate` s from ``candidates_of(iri)``), the questions of
    :func:`attribute_questions`, labelled with that attribute."""
    rng = random.Random(seed)
    out = []
    for iri in products:
        cands = candidates_of(iri)
        for i, cand in enumerate(cands):
            out.extend(Question(text, cands, [i]) for text in
                       attribute_questions(rng, cand, languages))  # fmt: skip
    return out
