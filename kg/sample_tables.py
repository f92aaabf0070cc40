"""The tables behind :mod:`kg.samples`: categories, nouns in four languages, brands,
materials, colours and the shares that shape the synthetic catalogue (see the generative
story in :mod:`kg.samples`). Plain data; the generator reads it, nothing here runs."""

from __future__ import annotations

from typing import NamedTuple

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
DE_INVARIABLE = {"orange": "orange", "pink": "rosa", "purple": "lila"}
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
