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
