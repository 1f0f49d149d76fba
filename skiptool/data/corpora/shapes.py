"""Built-in image-caption corpus *shapes*: procedurally drawn RGB scenes with five captions each,
laid out like COCO (see `skiptool.data.corpora.coco` for the caption data-dir layout).

    prepare_shapes("data/shapes", num_train=1000, num_dev=100, num_test=100, image_size=64, seed=0)

A scene holds 1-3 objects that do not overlap, each a shape (circle, square, triangle, star,
diamond, hexagon, cross, heart), a colour (red, green, blue, yellow, orange, purple, pink, white,
black, brown; always in contrast with the background), a size (small, medium, large: radius
about 10, 15, 22% of the image side) and a position (a 3x3 grid: top left ... bottom right).
Backgrounds are light or dark, plain or a gradient, with Gaussian noise of random strength;
shapes other than circles are turned by a small random angle. Drawing is done at 4x and
downsampled (anti-aliased edges).

Each image gets five captions, each from a different template (picture of / there is / on a dark
background / relations such as "to the left of", "above", "under" between objects / positions /
counts), with synonyms drawn for shapes, sizes, colours and relations, so no two captions of an
image are worded alike. Keys: `shapes000042` (the image) and `shapes000042-c1..c5` (the pairs);
image i is drawn from its own seed (`seed`, i), so the same arguments give byte-identical PNGs,
the first images do not change when a split grows, and scenes and captions do not depend on
`image_size`. Splits take consecutive images: train
first, then dev, then test. Output: `out_dir/images/<split>/<key>.png` and caption data dirs
`out_dir/{train,dev,test}` (img.scp, text, captions), all written by a rename when complete.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from skiptool.data.corpora.coco import SPLITS, write_caption_dirs
from skiptool.data.datadir import DataDir, make_temp_dir, replace_dir
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable
from skiptool.utils.progress import track

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 90, 225), "yellow": (240, 215, 40),
           "orange": (245, 140, 30), "purple": (140, 60, 190), "pink": (245, 135, 195),
           "white": (248, 248, 248), "black": (18, 18, 18), "brown": (135, 85, 40)}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon", "cross", "heart")
SIZES = {"small": (0.085, 0.11), "medium": (0.13, 0.16), "large": (0.19, 0.23)}  # radius / image side
BACKGROUNDS = {"light": ((200, 200, 200), (235, 228, 205), (195, 212, 230), (225, 215, 225)),
               "dark": ((55, 55, 60), (25, 32, 62), (30, 55, 40), (65, 40, 45))}
MAX_TURN = {"circle": 0, "square": 15, "triangle": 20, "star": 36, "diamond": 10, "hexagon": 30,
            "cross": 15, "heart": 15}  # degrees either way
SUPERSAMPLE = 4
MIN_CONTRAST = 70  # luma difference between an object and its background

# Caption words. Synonyms are drawn per caption; the first entry is the plain word.
SHAPE_WORDS = {"circle": ("circle", "disk", "round dot"), "square": ("square", "box"),
               "triangle": ("triangle",), "star": ("star",), "diamond": ("diamond", "rhombus"),
               "hexagon": ("hexagon",), "cross": ("cross", "plus sign"), "heart": ("heart",)}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "medium": ("medium", "medium sized"),
              "large": ("large", "big", "huge")}
COLOUR_WORDS = {"purple": ("purple", "violet")}
RELATION_WORDS = {"left": ("to the left of", "left of", "next to"), "right": ("to the right of", "right of", "beside"),
                  "above": ("above", "over"), "below": ("below", "under", "beneath")}
OBJECT_WORDS = ("shapes", "objects", "figures")
ROW_WORDS, COL_WORDS = ("top", "middle", "bottom"), ("left", "center", "right")


@dataclass(frozen=True)
class Thing:
    shape: str
    colour: str
    size: str
    x: float  # centre, fraction of the image side
    y: float
    radius: float  # fraction of the image side
    turn: float  # degrees

    @property
    def cell(self) -> tuple[int, int]:
        return min(2, int(self.y * 3)), min(2, int(self.x * 3))


@dataclass(frozen=True)
class Scene:
    things: tuple[Thing, ...]
    background: str  # light or dark
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]  # gradient ends (equal when plain)
    gradient_angle: float
    noise: float  # std of the Gaussian noise, 0-255 scale


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def draw_scene(rng: np.random.Generator) -> Scene:
    """A random scene: background, then 1-3 objects placed without overlap."""
    background = "light" if rng.random() < 0.5 else "dark"
    family = BACKGROUNDS[background]
    start = family[rng.integers(len(family))]
    end = family[rng.integers(len(family))] if rng.random() < 0.5 else start
    jitter = lambda c: tuple(int(np.clip(v + rng.integers(-12, 13), 0, 255)) for v in c)  # noqa: E731
    colours = (jitter(start), jitter(end))
    usable = [c for c, rgb in COLOURS.items() if all(abs(_luma(rgb) - _luma(b)) >= MIN_CONTRAST for b in colours)]
    count = int(rng.integers(1, 4))
    for _ in range(100):
        things: list[Thing] = []
        for _ in range(count):
            size = list(SIZES)[rng.integers(len(SIZES))]
            radius = float(rng.uniform(*SIZES[size]))
            for _ in range(50):
                x, y = rng.uniform(radius + 0.02, 0.98 - radius, size=2)
                if all(math.hypot(x - t.x, y - t.y) > radius + t.radius + 0.04 for t in things):
                    break
            else:
                break
            shape = SHAPES[rng.integers(len(SHAPES))]
            colour = usable[rng.integers(len(usable))]
            turn = float(rng.uniform(-MAX_TURN[shape], MAX_TURN[shape]))
            things.append(Thing(shape, colour, size, float(x), float(y), radius, turn))
        if len(things) == count:
            break
    else:  # cannot happen with these sizes; kept as a guard
        raise AssertionError("no room for the objects")
    return Scene(tuple(sorted(things, key=lambda t: t.x)), background, colours, float(rng.uniform(0, 2 * np.pi)),
                 float(rng.choice([0.0, 2.0, 5.0, 9.0])))


def _outline(thing: Thing, size: int) -> list[tuple[float, float]] | None:
    """Polygon of a shape in pixels (None for a circle)."""
    cx, cy, r = thing.x * size, thing.y * size, thing.radius * size
    if thing.shape == "circle":
        return None
    if thing.shape == "square":
        pts = [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
    elif thing.shape == "triangle":
        pts = [(0, -1), (0.87, 0.6), (-0.87, 0.6)]
    elif thing.shape == "star":
        pts = [((1 if i % 2 == 0 else 0.42) * math.sin(i * math.pi / 5),
                -(1 if i % 2 == 0 else 0.42) * math.cos(i * math.pi / 5)) for i in range(10)]
    elif thing.shape == "diamond":
        pts = [(0, -1), (0.62, 0), (0, 1), (-0.62, 0)]
    elif thing.shape == "hexagon":
        pts = [(math.cos(i * math.pi / 3), math.sin(i * math.pi / 3)) for i in range(6)]
    elif thing.shape == "cross":
        a, b = 0.3, 0.9
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    else:  # heart
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        hx, hy = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = list(zip(hx / 17, (hy + 2.5) / 17))
    c, s = math.cos(math.radians(thing.turn)), math.sin(math.radians(thing.turn))
    return [(cx + r * (px * c - py * s), cy + r * (px * s + py * c)) for px, py in pts]


def render_scene(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """The scene as a size x size x 3 uint8 image."""
    big = size * SUPERSAMPLE
    coords = (np.arange(big) + 0.5) / big - 0.5
    along = np.cos(scene.gradient_angle) * coords[None, :] + np.sin(scene.gradient_angle) * coords[:, None]
    w = np.clip(along / 1.42 + 0.5, 0, 1)[..., None]
    canvas = (1 - w) * np.array(scene.colours[0]) + w * np.array(scene.colours[1])
    image = Image.fromarray(np.rint(canvas).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    for thing in scene.things:
        colour = COLOURS[thing.colour]
        outline = _outline(thing, big)
        if outline is None:
            r = thing.radius * big
            pen.ellipse([thing.x * big - r, thing.y * big - r, thing.x * big + r, thing.y * big + r], fill=colour)
        else:
            pen.polygon(outline, fill=colour)
    small = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    if scene.noise:
        small = small + rng.normal(0, scene.noise, small.shape)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Captions


def _article(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x")) else "s")


class _Words:
    """Synonym choices for one caption."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, options):
        return options[self.rng.integers(len(options))]

    def shape(self, t: Thing) -> str:
        return self.pick(SHAPE_WORDS[t.shape])

    def size(self, t: Thing) -> str:
        return self.pick(SIZE_WORDS[t.size])

    def colour(self, t: Thing) -> str:
        return self.pick(COLOUR_WORDS.get(t.colour, (t.colour,)))

    def full(self, t: Thing) -> str:  # "a small red circle"
        return _article(f"{self.size(t)} {self.colour(t)} {self.shape(t)}")

    def plain(self, t: Thing) -> str:  # "a red circle"
        return _article(f"{self.colour(t)} {self.shape(t)}")

    def relation(self, a: Thing, b: Thing) -> str:
        """Where a is with respect to b, along the axis on which they are furthest apart."""
        dx, dy = b.x - a.x, b.y - a.y
        side = ("left" if dx > 0 else "right") if abs(dx) >= abs(dy) else ("above" if dy > 0 else "below")
        return self.pick(RELATION_WORDS[side])

    def position(self, t: Thing) -> str:
        row, col = t.cell
        if (row, col) == (1, 1):
            return self.pick(("in the center", "in the middle"))
        if row == 1:
            return self.pick((f"on the {COL_WORDS[col]}", f"on the {COL_WORDS[col]} side"))
        if col == 1:
            return f"at the {ROW_WORDS[row]}"
        return self.pick((f"in the {ROW_WORDS[row]} {COL_WORDS[col]} corner", f"at the {ROW_WORDS[row]} {COL_WORDS[col]}"))


def _templates(scene: Scene) -> list:
    """Caption templates that fit the scene: functions of a _Words."""
    t, bg = scene.things, scene.background
    if len(t) == 1:
        a = t[0]
        return [
            lambda w: f"{w.full(a)} {w.position(a)}.",
            lambda w: f"there is {w.full(a)} {w.position(a)}.",
            lambda w: f"{w.full(a)} on a {bg} background.",
            lambda w: f"a picture of {w.full(a)}.",
            lambda w: f"{w.plain(a)} is shown {w.position(a)}.",
            lambda w: f"one {w.size(a)} {w.shape(a)} that is {w.colour(a)}.",
            lambda w: f"a single {w.colour(a)} {w.shape(a)} {w.position(a)} of the image.",
            lambda w: f"{_article(w.size(a) + ' ' + w.shape(a))} colored {w.colour(a)}, {w.position(a)}.",
        ]
    if len(t) == 2:
        a, b = t
        templates = [
            lambda w: f"{w.full(a)} {w.relation(a, b)} {w.full(b)}.",
            lambda w: f"{w.full(b)} {w.relation(b, a)} {w.full(a)}.",
            lambda w: f"there are two {w.pick(OBJECT_WORDS)}: {w.full(a)} and {w.full(b)}.",
            lambda w: f"{w.full(a)} {w.position(a)} and {w.full(b)} {w.position(b)}.",
            lambda w: f"the {w.colour(a)} {w.shape(a)} is {w.relation(a, b)} the {w.colour(b)} {w.shape(b)}.",
            lambda w: f"two {w.pick(OBJECT_WORDS)} on a {bg} background, {w.full(a)} and {w.full(b)}.",
            lambda w: f"a picture of {w.plain(a)} and {w.plain(b)}.",
        ]
        if a.shape == b.shape and a.colour != b.colour:
            templates.append(lambda w: f"two {_plural(w.shape(a))}, one {w.colour(a)} and one {w.colour(b)}.")
        return templates
    a, b, c = t
    largest = max(t, key=lambda x: x.radius)
    return [
        lambda w: f"three {w.pick(OBJECT_WORDS)}: {w.full(a)}, {w.full(b)} and {w.full(c)}.",
        lambda w: f"{w.full(a)}, {w.full(b)} and {w.full(c)} on a {bg} background.",
        lambda w: f"{w.full(a)} {w.relation(a, b)} {w.full(b)}, and {w.full(c)} {w.position(c)}.",
        lambda w: f"there are three {w.pick(OBJECT_WORDS)}, the largest is {w.plain(largest)}.",
        lambda w: f"a picture of {w.plain(a)}, {w.plain(b)} and {w.plain(c)}.",
        lambda w: f"{w.full(c)} {w.position(c)}, {w.full(a)} {w.position(a)} and {w.full(b)} {w.position(b)}.",
        lambda w: f"three {w.pick(OBJECT_WORDS)} in a row: {w.plain(a)}, {w.plain(b)} and {w.plain(c)}.",
    ]


def caption_scene(scene: Scene, rng: np.random.Generator, count: int = 5) -> list[str]:
    """`count` captions, each from a different template, capitalised as sentences."""
    templates = _templates(scene)
    if count > len(templates):
        raise SkiptoolError(f"--captions-per-image {count}: at most {len(templates)} for this scene")
    chosen = rng.choice(len(templates), size=count, replace=False)
    words = _Words(rng)
    captions = []
    for i in chosen:
        caption = templates[i](words)
        captions.append(caption[0].upper() + caption[1:])
    return captions


def make_image(index: int, seed: int, image_size: int, captions_per_image: int = 5) -> tuple[np.ndarray, list[str], Scene]:
    """Image `index` of the corpus of `seed`: (pixels, captions, scene)."""
    rng = np.random.default_rng([seed, index])
    scene = draw_scene(rng)
    captions = caption_scene(scene, rng, captions_per_image)  # before drawing: the same at any image size
    return render_scene(scene, image_size, rng), captions, scene


def prepare_shapes(out_dir: str | os.PathLike, num_train: int = 1000, num_dev: int = 100, num_test: int = 100,
                   image_size: int = 64, captions_per_image: int = 5, seed: int = 0, overwrite: bool = False,
                   quiet: bool | None = None) -> dict[str, DataDir]:
    """Draw the corpus into `out_dir` (see the module docstring); returns the caption data dirs."""
    sizes = {"train": num_train, "dev": num_dev, "test": num_test}
    for split, n in sizes.items():
        if n < 1:
            raise SkiptoolError(f"--num-{split} {n}: need at least 1 image")
    if not 16 <= image_size <= 1024:
        raise SkiptoolError(f"--image-size {image_size}: must be 16 to 1024 pixels")
    if not 1 <= captions_per_image <= 7:
        raise SkiptoolError(f"--captions-per-image {captions_per_image}: must be 1 to 7")
    out_dir = Path(out_dir).resolve()
    for split in SPLITS:
        check_writable(out_dir / split, overwrite, "data dir")
        check_writable(out_dir / "images" / split, overwrite, "image folder")
    index = 0
    splits = {}
    for split, n in sizes.items():
        image_dir = out_dir / "images" / split
        image_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = make_temp_dir(image_dir)
        entries = []
        try:
            for i in track(range(index, index + n), total=n, description=f"shapes {split}", quiet=quiet, unit="img"):
                pixels, captions, _ = make_image(i, seed, image_size, captions_per_image)
                key = f"shapes{i:06d}"
                Image.fromarray(pixels).save(scratch / f"{key}.png")
                entries.append((key, image_dir / f"{key}.png", captions))
            replace_dir(scratch, image_dir)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        splits[split] = entries
        index += n
    return write_caption_dirs(out_dir, splits, captions_per_image, overwrite)
