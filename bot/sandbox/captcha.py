"""A small, real captcha image (PNG, digits on noise), drawn without any imaging library.

The picture for a token is always the same (drawn from the token), so serving it changes
nothing; a token the sandbox never issued gets random digits that no answer matches.
"""

from __future__ import annotations

import random
import struct
import zlib

_FONT = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
}
WIDTH, HEIGHT, SCALE = 80, 30, 3


def captcha_png(digits: str, seed: str) -> bytes:
    rng = random.Random(seed)
    bg = (rng.randint(225, 250), rng.randint(225, 250), rng.randint(225, 250))
    px = [[list(bg) for _ in range(WIDTH)] for _ in range(HEIGHT)]
    for _ in range(120):  # speckles
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        px[y][x] = [rng.randint(120, 220) for _ in range(3)]
    for i, ch in enumerate(digits):
        colour = [rng.randint(10, 110) for _ in range(3)]
        ox, oy = 5 + i * 18 + rng.randint(-1, 2), 4 + rng.randint(-2, 3)
        for row, bits in enumerate(_FONT.get(ch, _FONT["0"])):
            for col, bit in enumerate(bits):
                if bit == "1":
                    for dy in range(SCALE):
                        for dx in range(SCALE):
                            x, y = ox + col * SCALE + dx, oy + row * SCALE + dy
                            if 0 <= x < WIDTH and 0 <= y < HEIGHT:
                                px[y][x] = colour
    for _ in range(2):  # interference lines
        y0, y1 = rng.randrange(HEIGHT), rng.randrange(HEIGHT)
        colour = [rng.randint(90, 170) for _ in range(3)]
        for x in range(WIDTH):
            y = y0 + (y1 - y0) * x // WIDTH
            px[y][x] = colour
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in px)
    return _png(WIDTH, HEIGHT, raw)


def random_digits(seed: str, n: int = 4) -> str:
    rng = random.Random("digits:" + seed)
    return "".join(rng.choice("0123456789") for _ in range(n))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


# -- reading one back: a solver hook for practice runs against the sandbox ------------------------

def solve(image: bytes, site: str = "") -> str | None:
    """Reads the digits of a sandbox captcha from its picture (a screenshot of the image works
    too): the `captcha_solver` hook `bot.sandbox.captcha:solve`. It knows this drawing and
    nothing else; it is the kind of hook an office would plug a real recogniser into."""
    try:
        width, height, pixels = _decode_png(image)
    except ValueError:
        return None
    # A screenshot of the element may carry its border and a pixel of the page around it.
    if not (WIDTH <= width <= WIDTH + 4 and HEIGHT <= height <= HEIGHT + 4):
        return None
    best: tuple[float, str] | None = None
    for cx in range(width - WIDTH + 1):
        for cy in range(height - HEIGHT + 1):
            crop = [[max(px) <= 110 for px in row[cx:cx + WIDTH]] for row in pixels[cy:cy + HEIGHT]]
            found = _read(crop)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
    return best[1] if best is not None else None


def _read(dark_px) -> tuple[float, str] | None:
    """(confidence, digits) from a picture's dark-pixel mask (digits are drawn darker than
    anything else on it)."""
    digits, total = [], 0.0
    for i in range(4):
        best = None
        for dx in range(-1, 3):
            for dy in range(-2, 4):
                ox, oy = 5 + i * 18 + dx, 4 + dy
                for ch, glyph in _FONT.items():
                    score = _score(dark_px, ox, oy, glyph)
                    if best is None or score > best[0]:
                        best = (score, ch)
        if best is None or best[0] < 0.8:
            return None
        digits.append(best[1])
        total += best[0]
    return total, "".join(digits)


def _score(dark_px, ox: int, oy: int, glyph) -> float:
    """The share of the glyph's cells that agree with the picture: 'on' cells dark, 'off' cells
    light, each cell decided by the majority of its 3x3 pixels (an interference line crosses
    one row of them at most)."""
    agree = total = 0
    for row, bits in enumerate(glyph):
        for col, bit in enumerate(bits):
            dark = 0
            for dy in range(SCALE):
                for dx in range(SCALE):
                    x, y = ox + col * SCALE + dx, oy + row * SCALE + dy
                    if 0 <= x < WIDTH and 0 <= y < HEIGHT and dark_px[y][x]:
                        dark += 1
            total += 1
            agree += (dark >= 5) == (bit == "1")
    return agree / total


def _decode_png(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """8-bit RGB or RGBA, non-interlaced PNG (ours, or Chromium's screenshot of it)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if header is None:
        raise ValueError("no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("unsupported PNG")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows
