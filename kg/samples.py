"""A deterministic synthetic toy and jewellery catalogue (schema.org Turtle + PNG images).

The data tables are :mod:`kg.sample_tables`, the pictures :mod:`kg.sample_images`.
Used by ``kgf demo``, the tests, the notebooks and the benchmarks of later stages (related
product link prediction, multilingual text linking, image features). Nothing is random at
run time: the same ``(n_products, seed)`` gives the same Turtle bytes, and the same
``(n_products, seed, image_size)`` the same PNG bytes.

The generative story, i.e. what determines what:

1. **Category.** Two root categories (toys, jewellery) with five leaves each; main products
   are spread evenly over the ten leaves. About a fifth of the products are *accessories*
   (battery pack, display case, pendant chain, gift box, watch strap...), which live in a
   third leaf per domain (toy / jewellery accessories) and are made *for* one target leaf.
2. **Brand** given the leaf: a brand's favourite leaves weigh 10, its domain's other leaves
   1, the other domain 0.2 - so every brand is mostly a toy or a jewellery brand.
3. **Material** given the leaf (or accessory kind); **colour** given the leaf for toys, given
   the material for jewellery (gold -> gold or rose gold, steel -> silver or black, enamel ->
   a bright colour).
4. **Price** ~ category median x material factor x brand factor x log-normal(0, 0.3);
   2 decimals, EUR. The *price band* (low / mid / high against the leaf median) feeds 6.
5. **Text.** Names compose brand, colour, noun, material (jewellery), a size detail (scale
   1:24, 1000 pieces, 40 mm) and for ~30% the SKU, in en / de / es / zh with the German and
   Spanish adjective agreement done properly. Descriptions come from two templates per
   language; ~5-15% miss a description in de / es / zh. ~5% have no image, ~2% no price.
6. **Relations** (both directions are written for the symmetric ones):
   ``schema:isAccessoryOrSparePartFor`` accessory -> up to 3 main products of its target
   leaf, same brand first (with ``product_lines``: up to 3 products of one *product line*,
   see 8); ``schema:isSimilarTo`` same leaf and price band, each product to
   its 2 nearest in log price; ``schema:isRelatedTo`` between paired leaves (necklaces and
   earrings, rings and bracelets, watches and bracelets, dolls and plush, building sets and
   toy cars) with the same brand (toys) or the same material and colour (jewellery), each
   product to its 2 nearest in log price.
7. **Image** (``images/<slug>.png``): a shape per leaf or accessory kind (car, ring, bead
   necklace...) filled with the colour, on a light background with smooth noise and jitter
   in position and size drawn from ``(seed, slug)``.

8. **Product lines** (opt-in, ``product_lines=True``; off, the bytes above are unchanged):
   the main products of each (leaf, brand) are shuffled into lines of
   :data:`LINE_SIZE` (``schema:isVariantOf`` a ``schema:ProductGroup`` named "<brand> line
   <n>"), and an accessory fits one line of its brand and target leaf, like a lens fitting
   one camera mount or a cartridge one printer series. The line is in the graph only, never
   in a product's name or description: which products an accessory fits is then a graph
   fact that text cannot carry (``benchmarks/related_quality.py --product-lines``).

IRIs: products ``https://example.org/kgf/product/<slug>``, brands ``.../brand/<slug>``,
categories ``.../category/<slug>`` (``schema:CategoryCode``, leaves ``skos:broader`` a root).
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .sample_images import draw_product
from .sample_tables import (
    ACCESSORIES,
    ACCESSORY_LEAVES,
    ACCESSORY_SHARE,
    BRANDS,
    COLOURS,
    DE_INVARIABLE,
    LANGS,
    LEAVES,
    MATERIALS,
    MISSING_DESCRIPTION,
    MISSING_IMAGE,
    MISSING_PRICE,
    RELATED_LEAVES,
    RELATIONS,
    ROOTS,
    SAMPLE_BASE,
    SCHEMA,
    SKOS,
    SKU_IN_NAME,
    Noun,
)

#: Main products per product line (step 8 of the module docstring).
LINE_SIZE = 3


@dataclass(frozen=True)
class SampleSpec:
    """What fixes a sample catalogue: the Turtle depends on (n_products, seed, product_lines)."""

    n_products: int = 120
    seed: int = 0
    image_size: int = 96
    product_lines: bool = False

    def __post_init__(self):
        if self.n_products < 1:
            raise ValueError(f"n_products must be >= 1, got {self.n_products}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16 pixels, got {self.image_size}")


@dataclass(frozen=True)
class SampleCatalogue:
    """What :func:`write_sample_catalogue` wrote: paths and counts (``counts["triples"]``...)."""

    path: Path  # catalogue.ttl
    image_dir: Path
    spec: SampleSpec
    counts: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str):  # dict-style access: info["path"], info["products"]
        return getattr(self, key) if key in ("path", "image_dir", "spec") else self.counts[key]


@dataclass
class _Product:
    slug: str
    sku: str
    brand: str
    leaf: str  # the category: a LEAVES key or an accessory leaf
    kind: str  # LEAVES key for main products, ACCESSORIES key for accessories
    noun: Noun
    colour: str
    material: str
    detail: int | str | None
    target: str | None  # accessories: the leaf they are made for
    price: float
    has_price: bool
    has_image: bool
    sku_in_name: bool
    template: int
    desc_langs: tuple[str, ...]
    line: str | None = None  # main products with product_lines: "<brand>-<leaf>-<n>"
    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @property
    def band(self) -> int:
        ratio = self.price / LEAVES[self.kind].median if self.kind in LEAVES else 1.0
        return 0 if ratio < 0.75 else 2 if ratio > 1.4 else 1


# ---------------------------------------------------------------------------- catalogue
def write_sample_catalogue(
    out_dir: str | os.PathLike,
    n_products: int = 120,
    seed: int = 0,
    image_size: int = 96,
    product_lines: bool = False,
) -> SampleCatalogue:
    """Write ``out_dir/catalogue.ttl`` and ``out_dir/images/<slug>.png``; return paths, counts.

    Deterministic byte for byte for a given ``(n_products, seed, image_size,
    product_lines)``. Existing files of the same names are overwritten; other files in
    ``out_dir`` are left alone. ``product_lines``: step 8 of the module docstring.
    """
    spec = SampleSpec(n_products, seed, image_size, product_lines)
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    products = _generate(spec)
    text, n_triples = _turtle(products, spec)
    path = out / "catalogue.ttl"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)
    for p in products:
        if p.has_image:
            draw_product(p, spec.seed, spec.image_size).save(
                image_dir / f"{p.slug}.png", format="PNG", optimize=False
            )
    counts = {
        "products": len(products),
        "accessories": sum(p.kind in ACCESSORIES for p in products),
        "brands": len({p.brand for p in products}),
        "categories": len(ROOTS) + len(LEAVES) + len(ACCESSORY_LEAVES),
        "images": sum(p.has_image for p in products),
        "prices": sum(p.has_price for p in products),
        "lines": len({p.line for p in products if p.line}),
        "triples": n_triples,
    }
    counts.update({r: sum(len(p.edges[r]) for p in products) for r in RELATIONS})
    return SampleCatalogue(path, image_dir, spec, counts)


def _generate(spec: SampleSpec) -> list[_Product]:
    rng = random.Random(spec.seed)
    n_acc = round(spec.n_products * ACCESSORY_SHARE) if spec.n_products >= 5 else 0
    leaves = list(LEAVES)
    kinds = [leaves[i % len(leaves)] for i in range(spec.n_products - n_acc)]
    rng.shuffle(kinds)
    skus: set[str] = set()
    sku_end = 10 ** max(4, len(str(spec.n_products)) + 1)  # room for every brand's SKUs
    products = [_product(rng, kind, None, skus, sku_end) for kind in kinds]
    present = {p.kind for p in products}
    usable = [a for a, acc in ACCESSORIES.items() if present & set(acc.targets)]
    for _ in range(n_acc if usable else 0):
        kind = rng.choice(usable)
        target = rng.choice(sorted(present & set(ACCESSORIES[kind].targets)))
        products.append(_product(rng, kind, target, skus, sku_end))
    if spec.product_lines:
        _assign_lines(rng, products)
    _link(rng, products)
    return sorted(products, key=lambda p: p.slug)


def _product(
    rng: random.Random, kind: str, target: str | None, skus: set[str], sku_end: int
) -> _Product:
    if target is None:
        leaf = LEAVES[kind]
        domain, leaf_slug, median, for_leaf = leaf.domain, kind, leaf.median, kind
        noun, materials, colours = rng.choice(leaf.nouns), leaf.materials, leaf.colours
        detail = rng.choice(leaf.detail[0])
    else:
        acc = ACCESSORIES[kind]
        domain, median, for_leaf = acc.domain, acc.median, target
        leaf_slug = ACCESSORY_LEAVES[domain][0]
        noun, materials, colours, detail = acc.noun, acc.materials, acc.colours, None
    brand = _pick_brand(rng, domain, for_leaf)
    material = rng.choice(materials)
    colour = rng.choice(colours or MATERIALS[material][5])
    factor = MATERIALS[material][4] * BRANDS[brand][4]
    price = round(max(1.0, median * factor * rng.lognormvariate(0.0, 0.3)), 2)
    while (sku := f"{BRANDS[brand][1]}-{rng.randrange(1000, sku_end)}") in skus:
        pass
    skus.add(sku)
    return _Product(
        slug=_slug(f"{BRANDS[brand][0]} {noun.en} {sku}"),
        sku=sku, brand=brand, leaf=leaf_slug, kind=kind, noun=noun, colour=colour,
        material=material, detail=detail, target=target, price=price,
        has_price=rng.random() >= MISSING_PRICE, has_image=rng.random() >= MISSING_IMAGE,
        sku_in_name=rng.random() < SKU_IN_NAME, template=rng.randrange(2),
        desc_langs=tuple(lang for lang in LANGS if rng.random() >= MISSING_DESCRIPTION[lang]),
    )  # fmt: skip


def _pick_brand(rng: random.Random, domain: str, leaf: str) -> str:
    weights = [
        10.0 if leaf in fav else 1.0 if dom == domain else 0.05
        for _, _, dom, fav, _ in BRANDS.values()
    ]
    return rng.choices(list(BRANDS), weights)[0]


def _assign_lines(rng: random.Random, products: list[_Product]) -> None:
    """Step 8: shuffle each (leaf, brand) group of main products into lines of LINE_SIZE."""
    groups: dict[tuple[str, str], list[_Product]] = defaultdict(list)
    for p in sorted(products, key=lambda p: p.slug):
        if p.target is None:
            groups[p.kind, p.brand].append(p)
    for (kind, brand), group in sorted(groups.items()):
        rng.shuffle(group)
        for i, p in enumerate(group):
            p.line = f"{brand}-{kind}-{i // LINE_SIZE + 1}"


def _link(rng: random.Random, products: list[_Product]) -> None:
    """Fill ``edges`` per the generative story (step 6 of the module docstring)."""
    by_kind: dict[str, list[_Product]] = defaultdict(list)
    for p in products:
        by_kind[p.kind].append(p)
    for acc in (p for p in products if p.target is not None):
        pool = by_kind[acc.target]
        same = [p for p in pool if p.brand == acc.brand]
        if same and same[0].line is not None:  # product lines: the accessory fits one line
            line = rng.choice(sorted({p.line for p in same}))
            same = [p for p in same if p.line == line]
        picked = rng.sample(same, min(3, len(same))) if same else rng.sample(pool, 1)
        acc.edges["isAccessoryOrSparePartFor"].update(p.slug for p in picked)

    def nearest(group: list[_Product], pool: list[_Product], relation: str, k: int = 2):
        for p in group:
            others = sorted(
                (q for q in pool if q is not p),
                key=lambda q: (abs(math.log(q.price / p.price)), q.slug),
            )
            for q in others[:k]:
                p.edges[relation].add(q.slug)
                q.edges[relation].add(p.slug)

    bands: dict[tuple[str, int], list[_Product]] = defaultdict(list)
    for kind in LEAVES:
        for p in by_kind[kind]:
            bands[kind, p.band].append(p)
    for group in bands.values():
        nearest(group, group, "isSimilarTo")
    for a, b in RELATED_LEAVES:
        key = (
            (lambda p: p.brand)
            if LEAVES[a].domain == "toys"
            else (lambda p: (p.material, p.colour))
        )
        for p in by_kind[a]:
            nearest([p], [q for q in by_kind[b] if key(q) == key(p)], "isRelatedTo")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---------------------------------------------------------------------------- text
def _de_adj(colour: str, gender: str) -> str:
    stem = COLOURS[colour][2]
    if stem is None:
        return DE_INVARIABLE[colour]
    return stem + {"m": "er", "f": "e", "n": "es", "p": "e"}[gender]


def _es_adj(colour: str, gender: str) -> str:
    return COLOURS[colour][3][("m", "f", "mp", "fp").index(gender)]


def _colour_word(p: _Product, lang: str) -> str:
    """The colour adjective agreeing with the product noun."""
    if lang == "de":
        return _de_adj(p.colour, p.noun.de_g)
    if lang == "es":
        return _es_adj(p.colour, p.noun.es_g)
    return COLOURS[p.colour][1 if lang == "en" else 4]


def _noun_phrase(p: _Product, lang: str, with_colour: bool) -> str:
    """Colour + noun (+ "for <target>" for accessories), in word order of the language."""
    noun, colour = getattr(p.noun, lang), _colour_word(p, lang) if with_colour else ""
    target = LEAVES[p.target].names[LANGS.index(lang)] if p.target else ""
    if lang == "en":
        words = [colour, noun, f"for {target.lower()}" if target else ""]
    elif lang == "de":
        words = [colour, noun, f"für {target}" if target else ""]
    elif lang == "es":
        words = [noun, colour, f"para {target}" if target else ""]
    else:
        return f"{target}用{colour}{noun}" if target else f"{colour}{noun}"
    return " ".join(w for w in words if w)


def _jewellery(p: _Product) -> bool:
    return p.kind in LEAVES and LEAVES[p.kind].domain == "jewellery"


def _shows_colour(p: _Product) -> bool:
    """Whether text names the colour: not when it is the material's own ("gold ring in gold")."""
    return not (_jewellery(p) and p.colour in MATERIALS[p.material][5][:1])


def _name(p: _Product, lang: str) -> str:
    brand = BRANDS[p.brand][0]
    mat = MATERIALS[p.material]
    phrase = _noun_phrase(p, lang, _shows_colour(p))
    if _jewellery(p):
        m = mat[LANGS.index(lang)]
        phrase = {"en": f"{phrase} in {m}", "de": f"{phrase} aus {m}", "es": f"{phrase} de {m}",
                  "zh": f"{m}{phrase}"}[lang]  # fmt: skip
    parts = [brand, phrase]
    if p.kind in LEAVES and lang in LEAVES[p.kind].detail[1]:
        parts.append(LEAVES[p.kind].detail[1][lang].format(v=p.detail))
    if p.sku_in_name:
        parts.append(p.sku)
    return " ".join(parts)


def _description(p: _Product, lang: str) -> str:
    brand, mat = BRANDS[p.brand][0], MATERIALS[p.material][LANGS.index(lang)]
    phrase = _noun_phrase(p, lang, _shows_colour(p))
    detail = LEAVES[p.kind].detail[2][lang].format(v=p.detail) if p.kind in LEAVES else ""
    if lang == "en":
        article = "" if p.noun.en.endswith("s") else "An " if phrase[0] in "aeiou" else "A "
        first = (f"{article}{phrase} by {brand}, made of {mat}.",
                 f"{brand} {phrase} in {mat}.")[p.template]  # fmt: skip
    elif lang == "de":
        article = {"m": "Ein ", "f": "Eine ", "n": "Ein ", "p": ""}[p.noun.de_g]
        first = (f"{article}{phrase} von {brand} aus {mat}.",
                 f"Von {brand}: {phrase} aus {mat}.")[p.template]  # fmt: skip
    elif lang == "es":
        article = {"m": "Un ", "f": "Una ", "mp": "Unos ", "fp": "Unas "}[p.noun.es_g]
        first = (f"{article}{phrase} de {brand}. Material: {mat}.",
                 f"De la marca {brand}: {phrase} de {mat}.")[p.template]  # fmt: skip
    else:
        first = (f"{brand}出品的{phrase}，{mat}材质。", f"{phrase}，来自{brand}，采用{mat}。")[
            p.template
        ]
    text = f"{first} {detail}".strip() if lang != "zh" else first + detail
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------------------- Turtle
def _lit(text: str, lang: str | None = None) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"' + (f"@{lang}" if lang else "")


def _names(names: tuple[str, ...]) -> list[str]:
    return [_lit(n[0].upper() + n[1:], lang) for n, lang in zip(names, LANGS, strict=True)]


def _block(subject: str, rdf_type: str, props: list[tuple[str, list[str]]]) -> tuple[str, int]:
    props = [(p, objs) for p, objs in props if objs]
    body = " ;\n".join(f"    {p} {', '.join(objs)}" for p, objs in props)
    return f"{subject} a {rdf_type} ;\n{body} .\n", 1 + sum(len(o) for _, o in props)


def _turtle(products: list[_Product], spec: SampleSpec) -> tuple[str, int]:
    """The catalogue as Turtle and its number of triples; sorted, so deterministic."""
    head = (
        f"# kgfusion synthetic sample catalogue: n_products={spec.n_products}, seed={spec.seed}\n"
        f"# generated by kg.samples.write_sample_catalogue; images/ holds the product images\n"
        f"@prefix schema: <{SCHEMA}> .\n@prefix skos: <{SKOS}> .\n"
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
        f"@prefix product: <{SAMPLE_BASE}product/> .\n@prefix brand: <{SAMPLE_BASE}brand/> .\n"
        f"@prefix category: <{SAMPLE_BASE}category/> .\n"
    )
    blocks, total = [head], 0

    def add(block: tuple[str, int]) -> None:
        nonlocal total
        blocks.append(block[0])
        total += block[1]

    categories = [(s, n, None) for s, n in ROOTS.items()]
    categories += [(s, leaf.names, leaf.domain) for s, leaf in LEAVES.items()]
    categories += [(s, n, dom) for dom, (s, n) in ACCESSORY_LEAVES.items()]
    for slug, names, parent in sorted(categories, key=lambda c: (c[2] is not None, c[0])):
        add(_block(f"category:{slug}", "schema:CategoryCode", [
            ("schema:name", _names(names)), ("schema:codeValue", [_lit(slug)]),
            ("skos:broader", [f"category:{parent}"] if parent else []),
        ]))  # fmt: skip
    for slug in sorted({p.brand for p in products}):
        add(_block(f"brand:{slug}", "schema:Brand", [("schema:name", [_lit(BRANDS[slug][0])])]))
    for slug, p in sorted({p.line: p for p in products if p.line}.items()):
        name = f"{BRANDS[p.brand][0]} {LEAVES[p.kind].names[0]} line {slug.rsplit('-', 1)[1]}"
        add(_block(f"<{SAMPLE_BASE}line/{slug}>", "schema:ProductGroup", [
            ("schema:name", [_lit(name)]), ("schema:productGroupID", [_lit(slug)]),
        ]))  # fmt: skip
    for p in products:
        props = [
            ("schema:sku", [_lit(p.sku)]),
            ("schema:name", [_lit(_name(p, lang), lang) for lang in LANGS]),
            ("schema:description", [_lit(_description(p, lang), lang) for lang in p.desc_langs]),
            ("schema:brand", [f"brand:{p.brand}"]),
            ("schema:category", [f"category:{p.leaf}"]),
            ("schema:color", [_lit(COLOURS[p.colour][1])]),
            ("schema:material", [_lit(p.material)]),
            ("schema:price", [f'"{p.price:.2f}"^^xsd:decimal'] if p.has_price else []),
            ("schema:priceCurrency", [_lit("EUR")] if p.has_price else []),
            ("schema:image", [_lit(f"images/{p.slug}.png")] if p.has_image else []),
            ("schema:isVariantOf", [f"<{SAMPLE_BASE}line/{p.line}>"] if p.line else []),
        ]
        props += [(f"schema:{r}", [f"product:{s}" for s in sorted(p.edges[r])]) for r in RELATIONS]
        add(_block(f"product:{p.slug}", "schema:Product", props))
    return "\n".join(blocks), total
