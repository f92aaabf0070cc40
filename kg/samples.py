"""A deterministic synthetic toy and jewellery catalogue (schema.org Turtle + PNG images).

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
   leaf, same brand first; ``schema:isSimilarTo`` same leaf and price band, each product to
   its 2 nearest in log price; ``schema:isRelatedTo`` between paired leaves (necklaces and
   earrings, rings and bracelets, watches and bracelets, dolls and plush, building sets and
   toy cars) with the same brand (toys) or the same material and colour (jewellery), each
   product to its 2 nearest in log price.
7. **Image** (``images/<slug>.png``): a shape per leaf or accessory kind (car, ring, bead
   necklace...) filled with the colour, on a light background with smooth noise and jitter
   in position and size drawn from ``(seed, slug)``.

IRIs: products ``https://example.org/kgf/product/<slug>``, brands ``.../brand/<slug>``,
categories ``.../category/<slug>`` (``schema:CategoryCode``, leaves ``skos:broader`` a root).
"""

from __future__ import annotations

import math
import os
import random
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

SAMPLE_BASE = "https://example.org/kgf/"
SCHEMA = "http://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
LANGS = ("en", "de", "es", "zh")
RELATIONS = ("isAccessoryOrSparePartFor", "isSimilarTo", "isRelatedTo")


class Noun(NamedTuple):
    """A product noun; de gender m/f/n/p(lural), es gender m/f/mp/fp."""

    en: str
    de: str
    de_g: str
    es: str
    es_g: str
    zh: str


class Leaf(NamedTuple):
    domain: str
    names: tuple[str, str, str, str]  # category name en, de, es, zh (also "for <these>")
    nouns: tuple[Noun, ...]
    median: float
    materials: tuple[str, ...]
    colours: tuple[str, ...]  # toys only; jewellery colours follow the material
    shape: str
    detail: tuple[tuple[int | str, ...], dict[str, str], dict[str, str]]  # values, name, desc


class Accessory(NamedTuple):
    domain: str
    targets: tuple[str, ...]
    noun: Noun
    median: float
    materials: tuple[str, ...]
    colours: tuple[str, ...]
    shape: str


ROOTS = {
    "toys": ("Toys", "Spielzeug", "Juguetes", "玩具"),
    "jewellery": ("Jewellery", "Schmuck", "Joyería", "珠宝首饰"),
}
_PIECES = ({"en": "{v} pieces", "de": "{v} Teile", "es": "{v} piezas", "zh": "{v}片"},)
LEAVES: dict[str, Leaf] = {
    "toy-cars": Leaf("toys", ("Toy cars", "Spielzeugautos", "coches de juguete", "玩具车"), (
        Noun("racing car", "Rennauto", "n", "coche de carreras", "m", "赛车"),
        Noun("sports car", "Sportwagen", "m", "deportivo", "m", "跑车"),
        Noun("fire truck", "Feuerwehrauto", "n", "camión de bomberos", "m", "消防车")),
        24.0, ("die-cast metal", "plastic"), ("red", "blue", "yellow", "green", "black"), "car",
        (("1:18", "1:24", "1:43"), {k: "{v}" for k in LANGS},
         {"en": "Scale {v}, with free-wheeling axles.", "de": "Maßstab {v}, mit frei laufenden Achsen.",
          "es": "Escala {v}, con ruedas libres.", "zh": "比例 {v}，车轮可自由转动。"})),
    "building-sets": Leaf("toys", ("Building sets", "Bausets", "juegos de construcción", "积木"), (
        Noun("building set", "Bauset", "n", "juego de construcción", "m", "积木套装"),
        Noun("castle kit", "Burg-Bausatz", "m", "kit de castillo", "m", "城堡积木")),
        55.0, ("plastic",), ("red", "blue", "yellow", "green", "orange"), "bricks",
        ((150, 300, 600, 1000), _PIECES[0],
         {"en": "Contains {v} bricks and a step-by-step manual.", "de": "Enthält {v} Steine und eine Bauanleitung.",
          "es": "Incluye {v} piezas y un manual paso a paso.", "zh": "包含{v}块积木和分步说明书。"})),
    "dolls": Leaf("toys", ("Dolls", "Puppen", "muñecas", "玩偶"), (
        Noun("doll", "Puppe", "f", "muñeca", "f", "娃娃"),
        Noun("fashion doll", "Modepuppe", "f", "muñeca fashion", "f", "时尚娃娃")),
        29.0, ("vinyl",), ("pink", "purple", "blue", "red"), "doll",
        ((25, 30, 45), {},
         {"en": "{v} cm tall, with movable arms and legs.", "de": "{v} cm groß, mit beweglichen Armen und Beinen.",
          "es": "Mide {v} cm, con brazos y piernas articulados.", "zh": "高{v}厘米，手臂和腿可活动。"})),
    "puzzles": Leaf("toys", ("Puzzles", "Puzzles", "puzles", "拼图"), (
        Noun("jigsaw puzzle", "Puzzle", "n", "puzle", "m", "拼图"),),
        17.0, ("cardboard", "wood"), ("blue", "green", "orange", "purple", "yellow"), "puzzle",
        ((500, 1000, 1500), _PIECES[0],
         {"en": "{v} pieces with a poster of the motif.", "de": "{v} Teile mit Motivposter.",
          "es": "{v} piezas con póster del motivo.", "zh": "{v}片，附图案海报。"})),
    "plush": Leaf("toys", ("Plush toys", "Plüschtiere", "peluches", "毛绒玩具"), (
        Noun("teddy bear", "Teddybär", "m", "osito de peluche", "m", "泰迪熊"),
        Noun("plush bunny", "Plüschhase", "m", "conejito de peluche", "m", "毛绒兔子")),
        21.0, ("plush",), ("brown", "pink", "yellow", "blue"), "plush",
        ((20, 30, 45), {},
         {"en": "{v} cm, soft and machine washable.", "de": "{v} cm, weich und waschbar.",
          "es": "{v} cm, suave y lavable a máquina.", "zh": "{v}厘米，柔软可机洗。"})),
    "rings": Leaf("jewellery", ("Rings", "Ringe", "anillos", "戒指"), (
        Noun("ring", "Ring", "m", "anillo", "m", "戒指"),
        Noun("stacking ring", "Stapelring", "m", "anillo apilable", "m", "叠戴戒指")),
        160.0, ("gold", "sterling silver", "stainless steel"), (), "ring",
        ((50, 52, 54, 56, 58), {},
         {"en": "Ring size {v}.", "de": "Ringgröße {v}.", "es": "Talla de anillo {v}.", "zh": "戒指尺寸{v}号。"})),
    "necklaces": Leaf("jewellery", ("Necklaces", "Halsketten", "collares", "项链"), (
        Noun("necklace", "Halskette", "f", "collar", "m", "项链"),
        Noun("pendant necklace", "Anhängerkette", "f", "collar con colgante", "m", "吊坠项链")),
        190.0, ("gold", "sterling silver", "stainless steel"), (), "necklace",
        ((40, 45, 50), {k: "{v} cm" for k in LANGS},
         {"en": "Chain length {v} cm.", "de": "Kettenlänge {v} cm.", "es": "Largo de cadena {v} cm.", "zh": "链长{v}厘米。"})),
    "earrings": Leaf("jewellery", ("Earrings", "Ohrringe", "pendientes", "耳环"), (
        Noun("drop earrings", "Ohrhänger", "p", "pendientes largos", "mp", "耳坠"),
        Noun("earrings", "Ohrringe", "p", "pendientes", "mp", "耳环")),
        110.0, ("gold", "sterling silver", "enamel"), (), "earrings",
        ((8, 12, 20), {},
         {"en": "One pair, {v} mm long.", "de": "Ein Paar, {v} mm lang.", "es": "Un par, {v} mm de largo.", "zh": "一对，长{v}毫米。"})),
    "bracelets": Leaf("jewellery", ("Bracelets", "Armbänder", "pulseras", "手链"), (
        Noun("bracelet", "Armband", "n", "pulsera", "f", "手链"),
        Noun("bangle", "Armreif", "m", "brazalete", "m", "手镯")),
        130.0, ("gold", "sterling silver", "leather", "enamel"), (), "bracelet",
        ((17, 18, 19, 20), {k: "{v} cm" for k in LANGS},
         {"en": "Length {v} cm.", "de": "Länge {v} cm.", "es": "Largo {v} cm.", "zh": "长{v}厘米。"})),
    "watches": Leaf("jewellery", ("Watches", "Armbanduhren", "relojes", "手表"), (
        Noun("watch", "Armbanduhr", "f", "reloj", "m", "手表"),
        Noun("chronograph", "Chronograph", "m", "cronógrafo", "m", "计时腕表")),
        320.0, ("stainless steel", "gold", "titanium", "leather"), (), "watch",
        ((36, 38, 40, 42), {k: "{v} mm" for k in LANGS},
         {"en": "Case diameter {v} mm, water resistant.", "de": "Gehäusedurchmesser {v} mm, wasserdicht.",
          "es": "Caja de {v} mm, resistente al agua.", "zh": "表盘直径{v}毫米，防水。"})),
}  # fmt: skip
ACCESSORY_LEAVES = {
    "toys": ("toy-accessories", ("Toy accessories", "Spielzeugzubehör", "accesorios de juguetes", "玩具配件")),
    "jewellery": ("jewellery-accessories", ("Jewellery accessories", "Schmuckzubehör", "accesorios de joyería", "首饰配件")),
}  # fmt: skip
ACCESSORIES: dict[str, Accessory] = {
    "battery-pack": Accessory("toys", ("toy-cars",), Noun("battery pack", "Akku-Pack", "m", "batería recargable", "f", "充电电池"), 9.0, ("plastic",), ("black", "blue"), "battery"),
    "charger": Accessory("toys", ("toy-cars",), Noun("USB charger", "USB-Ladegerät", "n", "cargador USB", "m", "USB充电器"), 12.0, ("plastic",), ("black", "silver"), "charger"),
    "track-set": Accessory("toys", ("toy-cars",), Noun("track extension set", "Schienen-Erweiterungsset", "n", "set de pista", "m", "轨道扩展套装"), 19.0, ("plastic",), ("orange", "black"), "track"),
    "display-case": Accessory("toys", ("building-sets",), Noun("display case", "Vitrine", "f", "vitrina", "f", "展示盒"), 25.0, ("acrylic",), ("black", "silver"), "case"),
    "doll-outfit": Accessory("toys", ("dolls",), Noun("outfit set", "Kleiderset", "n", "conjunto de ropa", "m", "服装套装"), 11.0, ("fabric",), ("pink", "purple", "blue"), "dress"),
    "puzzle-frame": Accessory("toys", ("puzzles",), Noun("puzzle frame", "Puzzlerahmen", "m", "marco", "m", "拼图相框"), 15.0, ("wood",), ("brown", "black"), "frame"),
    "pendant-chain": Accessory("jewellery", ("necklaces",), Noun("pendant chain", "Ersatzkette", "f", "cadena", "f", "吊坠链"), 35.0, ("gold", "sterling silver"), (), "chain"),
    "gift-box": Accessory("jewellery", ("rings", "earrings", "necklaces", "bracelets"), Noun("gift box", "Geschenkbox", "f", "caja de regalo", "f", "礼盒"), 8.0, ("cardboard",), ("red", "black", "blue"), "box"),
    "cleaning-kit": Accessory("jewellery", ("rings",), Noun("cleaning kit", "Reinigungsset", "n", "kit de limpieza", "m", "清洁套装"), 11.0, ("fabric",), ("blue", "green"), "kit"),
    "watch-strap": Accessory("jewellery", ("watches",), Noun("replacement strap", "Ersatzarmband", "n", "correa de repuesto", "f", "替换表带"), 24.0, ("leather",), (), "strap"),
}  # fmt: skip
#: colour -> RGB, en, de adjective stem (None: invariable, use the en-like word), es m/f/mp/fp, zh
COLOURS = {
    "red": ((200, 30, 35), "red", "rot", ("rojo", "roja", "rojos", "rojas"), "红色"),
    "blue": ((30, 70, 200), "blue", "blau", ("azul", "azul", "azules", "azules"), "蓝色"),
    "green": ((30, 150, 60), "green", "grün", ("verde", "verde", "verdes", "verdes"), "绿色"),
    "yellow": ((240, 200, 20), "yellow", "gelb", ("amarillo", "amarilla", "amarillos", "amarillas"), "黄色"),
    "orange": ((245, 130, 20), "orange", None, ("naranja", "naranja", "naranja", "naranja"), "橙色"),
    "pink": ((240, 110, 170), "pink", None, ("rosa", "rosa", "rosa", "rosa"), "粉色"),
    "purple": ((130, 50, 170), "purple", None, ("morado", "morada", "morados", "moradas"), "紫色"),
    "brown": ((130, 80, 40), "brown", "braun", ("marrón", "marrón", "marrones", "marrones"), "棕色"),
    "black": ((28, 28, 30), "black", "schwarz", ("negro", "negra", "negros", "negras"), "黑色"),
    "gold": ((212, 172, 50), "gold", "golden", ("dorado", "dorada", "dorados", "doradas"), "金色"),
    "silver": ((170, 176, 188), "silver", "silbern", ("plateado", "plateada", "plateados", "plateadas"), "银色"),
    "rose-gold": ((205, 125, 115), "rose-gold", "roségolden", ("oro rosa",) * 4, "玫瑰金色"),
}  # fmt: skip
_DE_INVARIABLE = {"orange": "orange", "pink": "rosa", "purple": "lila"}
#: material -> en, de, es, zh, price factor, colours (jewellery: the colour follows the material)
MATERIALS = {
    "plastic": ("plastic", "Kunststoff", "plástico", "塑料", 1.0, ()),
    "die-cast metal": ("die-cast metal", "Druckguss", "metal fundido", "合金", 1.4, ()),
    "vinyl": ("vinyl", "Vinyl", "vinilo", "搪胶", 1.0, ()),
    "cardboard": ("cardboard", "Karton", "cartón", "纸板", 1.0, ()),
    "wood": ("wood", "Holz", "madera", "木质", 1.5, ()),
    "plush": ("plush", "Plüsch", "felpa", "毛绒", 1.0, ()),
    "fabric": ("fabric", "Stoff", "tela", "布料", 1.0, ()),
    "acrylic": ("acrylic", "Acryl", "acrílico", "亚克力", 1.0, ()),
    "gold": ("gold", "Gold", "oro", "黄金", 2.6, ("gold", "gold", "rose-gold")),
    "sterling silver": ("sterling silver", "Sterlingsilber", "plata de ley", "纯银", 1.0, ("silver",)),
    "stainless steel": ("stainless steel", "Edelstahl", "acero inoxidable", "不锈钢", 0.6, ("silver", "black")),
    "titanium": ("titanium", "Titan", "titanio", "钛金属", 1.6, ("silver", "black")),
    "leather": ("leather", "Leder", "cuero", "皮革", 0.6, ("black", "brown")),
    "enamel": ("enamel", "Emaille", "esmalte", "珐琅", 0.7, ("red", "blue", "green", "pink")),
}  # fmt: skip
#: brand slug -> name, SKU prefix, domain, favourite leaves, price factor
BRANDS = {
    "lumo": ("Lumo", "LM", "toys", ("toy-cars", "building-sets"), 1.0),
    "brickwell": ("Brickwell", "BW", "toys", ("building-sets", "puzzles"), 1.2),
    "dollina": ("Dollina", "DL", "toys", ("dolls", "plush"), 1.0),
    "puzzlo": ("Puzzlo", "PZ", "toys", ("puzzles",), 0.9),
    "fluffo": ("Fluffo", "FF", "toys", ("plush", "dolls"), 0.9),
    "aurelia": ("Aurelia", "AU", "jewellery", ("rings", "necklaces", "earrings"), 1.4),
    "stellara": ("Stellara", "ST", "jewellery", ("earrings", "necklaces", "bracelets"), 1.0),
    "chronex": ("Chronex", "CX", "jewellery", ("watches",), 1.3),
    "verdi-gioielli": ("Verdi Gioielli", "VG", "jewellery", ("bracelets", "rings"), 1.1),
    "kaito": ("Kaito", "KT", "jewellery", ("watches", "bracelets"), 0.8),
}
#: leaves whose products go together (schema:isRelatedTo)
RELATED_LEAVES = (
    ("necklaces", "earrings"),
    ("rings", "bracelets"),
    ("watches", "bracelets"),
    ("dolls", "plush"),
    ("building-sets", "toy-cars"),
)
ACCESSORY_SHARE = 0.2
MISSING_DESCRIPTION = {"en": 0.0, "de": 0.05, "es": 0.09, "zh": 0.14}
MISSING_IMAGE, MISSING_PRICE, SKU_IN_NAME = 0.05, 0.02, 0.3


@dataclass(frozen=True)
class SampleSpec:
    """What fixes a sample catalogue: the Turtle depends on (n_products, seed) only."""

    n_products: int = 120
    seed: int = 0
    image_size: int = 96

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
    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @property
    def band(self) -> int:
        ratio = self.price / LEAVES[self.kind].median if self.kind in LEAVES else 1.0
        return 0 if ratio < 0.75 else 2 if ratio > 1.4 else 1


# ---------------------------------------------------------------------------- catalogue
def write_sample_catalogue(
    out_dir: str | os.PathLike, n_products: int = 120, seed: int = 0, image_size: int = 96
) -> SampleCatalogue:
    """Write ``out_dir/catalogue.ttl`` and ``out_dir/images/<slug>.png``; return paths, counts.

    Deterministic byte for byte for a given ``(n_products, seed, image_size)``. Existing
    files of the same names are overwritten; other files in ``out_dir`` are left alone.
    """
    spec = SampleSpec(n_products, seed, image_size)
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
            _draw(p, spec).save(image_dir / f"{p.slug}.png", format="PNG", optimize=False)
    counts = {
        "products": len(products),
        "accessories": sum(p.kind in ACCESSORIES for p in products),
        "brands": len({p.brand for p in products}),
        "categories": len(ROOTS) + len(LEAVES) + len(ACCESSORY_LEAVES),
        "images": sum(p.has_image for p in products),
        "prices": sum(p.has_price for p in products),
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


def _link(rng: random.Random, products: list[_Product]) -> None:
    """Fill ``edges`` per the generative story (step 6 of the module docstring)."""
    by_kind: dict[str, list[_Product]] = defaultdict(list)
    for p in products:
        by_kind[p.kind].append(p)
    for acc in (p for p in products if p.target is not None):
        pool = by_kind[acc.target]
        same = [p for p in pool if p.brand == acc.brand]
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
        return _DE_INVARIABLE[colour]
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
        ]
        props += [(f"schema:{r}", [f"product:{s}" for s in sorted(p.edges[r])]) for r in RELATIONS]
        add(_block(f"product:{p.slug}", "schema:Product", props))
    return "\n".join(blocks), total


# ---------------------------------------------------------------------------- images
def _shade(rgb: tuple[int, ...], k: float) -> tuple[int, ...]:
    """Darker (k < 1) or towards white (k > 1) version of a colour."""
    if k <= 1:
        return tuple(int(v * k) for v in rgb)
    return tuple(int(v + (255 - v) * (k - 1)) for v in rgb)


def _draw(p: _Product, spec: SampleSpec) -> Image.Image:
    """The product's picture: its shape in its colour, jittered by ``(seed, slug)``."""
    s = spec.image_size
    rng = random.Random(f"{spec.seed}/{p.slug}")
    base = rng.randint(234, 248)
    bg = tuple(base + rng.randint(-3, 3) for _ in range(3))  # light, slightly tinted
    img = Image.new("RGB", (s, s), bg)
    cx, cy = (s / 2 + rng.uniform(-0.06, 0.06) * s for _ in range(2))
    r = s * 0.36 * rng.uniform(0.88, 1.08)
    shape = ACCESSORIES[p.kind].shape if p.kind in ACCESSORIES else LEAVES[p.kind].shape
    SHAPES[shape](ImageDraw.Draw(img), cx, cy, r, COLOURS[p.colour][0], bg)
    # smooth, low-amplitude noise: an 8x8 random field upsampled (integer ops only)
    noise = np.random.default_rng(zlib.crc32(f"{spec.seed}/{p.slug}".encode()))
    field_ = Image.fromarray(noise.integers(0, 256, (8, 8, 3), dtype=np.uint8), "RGB")
    smooth = np.asarray(field_.resize((s, s), Image.Resampling.BILINEAR), dtype=np.int16)
    pixels = np.asarray(img, dtype=np.int16) + (smooth - 128) // 16
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w, cy - h, cx + w, cy + h]


def _car(d, cx, cy, r, c, bg):
    d.rounded_rectangle(_box(cx, cy + 0.05 * r, r, 0.3 * r), radius=0.12 * r, fill=c)
    d.rounded_rectangle(_box(cx - 0.1 * r, cy - 0.4 * r, 0.45 * r, 0.2 * r), radius=0.1 * r, fill=c)
    d.rectangle(_box(cx - 0.1 * r, cy - 0.4 * r, 0.33 * r, 0.12 * r), fill=_shade(c, 1.6))
    for dx in (-0.55, 0.55):
        d.ellipse(_box(cx + dx * r, cy + 0.38 * r, 0.24 * r, 0.24 * r), fill=(35, 35, 35))


def _bricks(d, cx, cy, r, c, bg):
    for row in range(3):
        y = cy + (0.6 - 0.5 * row) * r
        for col in range(2 - row % 2):
            x = cx + (col - 0.5 + 0.5 * (row % 2)) * 0.95 * r
            d.rectangle(_box(x, y, 0.45 * r, 0.22 * r), fill=c, outline=_shade(c, 0.6))
    for dx in (-0.2, 0.2):
        d.ellipse(_box(cx + dx * r, cy - 0.62 * r, 0.1 * r, 0.07 * r), fill=_shade(c, 0.8))


def _doll(d, cx, cy, r, c, bg):
    d.polygon([(cx, cy - 0.35 * r), (cx - 0.6 * r, cy + r), (cx + 0.6 * r, cy + r)], fill=c)
    d.ellipse(_box(cx, cy - 0.6 * r, 0.3 * r, 0.3 * r), fill=(240, 205, 175))


def _puzzle(d, cx, cy, r, c, bg):
    cell = 2 * r / 3
    for i in range(3):
        for j in range(3):
            x, y = cx - r + (i + 0.5) * cell, cy - r + (j + 0.5) * cell
            d.rectangle(
                _box(x, y, 0.44 * cell, 0.44 * cell), fill=_shade(c, (1.0, 1.35)[(i + j) % 2])
            )


def _plush(d, cx, cy, r, c, bg):
    for dx in (-0.6, 0.6):
        d.ellipse(_box(cx + dx * r, cy - 0.65 * r, 0.3 * r, 0.3 * r), fill=c)
    d.ellipse(_box(cx, cy + 0.05 * r, 0.85 * r, 0.85 * r), fill=c)
    d.ellipse(_box(cx, cy + 0.3 * r, 0.3 * r, 0.22 * r), fill=_shade(c, 1.5))
    for dx in (-0.3, 0.3):
        d.ellipse(_box(cx + dx * r, cy - 0.1 * r, 0.08 * r, 0.08 * r), fill=(20, 20, 20))


def _ring(d, cx, cy, r, c, bg):
    d.ellipse(_box(cx, cy, 0.8 * r, 0.8 * r), fill=c)
    d.ellipse(_box(cx, cy, 0.55 * r, 0.55 * r), fill=bg)
    d.ellipse(_box(cx, cy - 0.75 * r, 0.18 * r, 0.18 * r), fill=_shade(c, 1.5))


def _necklace(d, cx, cy, r, c, bg):
    for k in range(13):
        a = math.radians(15 + 150 * k / 12)
        x, y = cx + r * math.cos(a), cy - 0.45 * r + r * math.sin(a)
        d.ellipse(_box(x, y, 0.09 * r, 0.09 * r), fill=c)
    d.ellipse(_box(cx, cy + 0.75 * r, 0.2 * r, 0.2 * r), fill=_shade(c, 0.8))


def _earrings(d, cx, cy, r, c, bg):
    for dx in (-0.45, 0.45):
        x = cx + dx * r
        d.ellipse(_box(x, cy - 0.6 * r, 0.1 * r, 0.1 * r), outline=c, width=max(1, int(0.05 * r)))
        d.polygon(
            [(x, cy - 0.4 * r), (x - 0.25 * r, cy + 0.3 * r), (x + 0.25 * r, cy + 0.3 * r)], fill=c
        )
        d.ellipse(_box(x, cy + 0.35 * r, 0.25 * r, 0.25 * r), fill=c)


def _bracelet(d, cx, cy, r, c, bg):
    d.ellipse(_box(cx, cy, r, 0.6 * r), outline=c, width=max(2, int(0.22 * r)))


def _watch(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy, 0.32 * r, r), fill=c)
    d.ellipse(_box(cx, cy, 0.55 * r, 0.55 * r), fill=c)
    d.ellipse(_box(cx, cy, 0.43 * r, 0.43 * r), fill=(250, 250, 245))
    d.line([(cx, cy), (cx, cy - 0.35 * r)], fill=(30, 30, 30), width=max(1, int(0.05 * r)))
    d.line([(cx, cy), (cx + 0.25 * r, cy)], fill=(30, 30, 30), width=max(1, int(0.05 * r)))


def _battery(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy + 0.05 * r, 0.3 * r, 0.55 * r), fill=c)
    d.rectangle(_box(cx, cy - 0.55 * r, 0.12 * r, 0.06 * r), fill=(90, 90, 90))
    d.rectangle(_box(cx, cy + 0.05 * r, 0.3 * r, 0.1 * r), fill=_shade(c, 1.5))


def _charger(d, cx, cy, r, c, bg):
    d.rounded_rectangle(_box(cx - 0.2 * r, cy, 0.35 * r, 0.35 * r), radius=0.08 * r, fill=c)
    d.line([(cx + 0.15 * r, cy), (cx + 0.8 * r, cy + 0.4 * r)], fill=c, width=max(1, int(0.08 * r)))


def _track(d, cx, cy, r, c, bg):
    d.arc(_box(cx, cy + 0.3 * r, r, 0.8 * r), 190, 350, fill=c, width=max(2, int(0.25 * r)))


def _case(d, cx, cy, r, c, bg):
    d.rectangle(
        _box(cx, cy, 0.7 * r, 0.6 * r), fill=_shade(c, 1.7), outline=c, width=max(1, int(0.1 * r))
    )


def _dress(d, cx, cy, r, c, bg):
    d.polygon([(cx - 0.2 * r, cy - 0.6 * r), (cx + 0.2 * r, cy - 0.6 * r),
               (cx + 0.6 * r, cy + 0.6 * r), (cx - 0.6 * r, cy + 0.6 * r)], fill=c)  # fmt: skip


def _frame(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy, 0.75 * r, 0.6 * r), outline=c, width=max(2, int(0.2 * r)))


def _chain(d, cx, cy, r, c, bg):
    for k in range(9):
        x = cx - 0.8 * r + 0.2 * k * r
        y = cy + 0.25 * r * math.sin(k * 0.9)
        d.ellipse(_box(x, y, 0.13 * r, 0.09 * r), outline=c, width=max(2, int(0.07 * r)))


def _gift_box(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy + 0.1 * r, 0.55 * r, 0.5 * r), fill=c)
    d.rectangle(_box(cx, cy + 0.1 * r, 0.08 * r, 0.5 * r), fill=(212, 172, 50))
    d.ellipse(_box(cx, cy - 0.5 * r, 0.15 * r, 0.1 * r), fill=(212, 172, 50))


def _kit(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx - 0.3 * r, cy + 0.15 * r, 0.2 * r, 0.45 * r), fill=c)
    d.rectangle(_box(cx - 0.3 * r, cy - 0.38 * r, 0.1 * r, 0.08 * r), fill=(60, 60, 60))
    d.rectangle(_box(cx + 0.35 * r, cy + 0.3 * r, 0.3 * r, 0.3 * r), fill=_shade(c, 1.5))


def _strap(d, cx, cy, r, c, bg):
    d.rounded_rectangle(_box(cx, cy, 0.2 * r, 0.9 * r), radius=0.1 * r, fill=c)
    for k in range(3):
        d.ellipse(_box(cx, cy + (0.2 + 0.2 * k) * r, 0.04 * r, 0.04 * r), fill=bg)
    d.rectangle(_box(cx, cy - 0.8 * r, 0.28 * r, 0.1 * r), outline=(120, 120, 120), width=2)


SHAPES = {
    "car": _car, "bricks": _bricks, "doll": _doll, "puzzle": _puzzle, "plush": _plush,
    "ring": _ring, "necklace": _necklace, "earrings": _earrings, "bracelet": _bracelet,
    "watch": _watch, "battery": _battery, "charger": _charger, "track": _track, "case": _case,
    "dress": _dress, "frame": _frame, "chain": _chain, "box": _gift_box, "kit": _kit,
    "strap": _strap,
}  # fmt: skip
