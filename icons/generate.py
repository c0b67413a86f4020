#!/usr/bin/env python3
"""Draws the Whetstone icon (a sharpening stone under a blade edge) as PNGs.

Pure Python so it runs anywhere the repo does; run it from any folder to regenerate
icons/32x32.png, icons/128x128.png, icons/128x128@2x.png and icons/icon.png.
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = 4  # supersampling per axis, for smooth edges


def rounded_rect(x, y, cx, cy, hw, hh, r):
    qx = abs(x - cx) - hw + r
    qy = abs(y - cy) - hh + r
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def rotate(x, y, cx, cy, angle):
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    return cx + c * dx + s * dy, cy - s * dx + c * dy


def over(dst, src, alpha):
    return tuple(d * (1 - alpha) + s * alpha for d, s in zip(dst, src))


def shade(u, v):
    """Colour and coverage of one sample at unit coordinates (u, v) in [0, 1]."""
    bg_d = rounded_rect(u, v, 0.5, 0.5, 0.46, 0.46, 0.11)
    if bg_d > 0:
        return (0.0, 0.0, 0.0), 0.0
    t = v
    color = (0.06 + 0.04 * t, 0.33 - 0.10 * t, 0.36 - 0.08 * t)  # deep teal, darker at the bottom
    # the stone: a tilted slab with a lighter top face
    su, sv = rotate(u, v, 0.5, 0.64, math.radians(-12))
    if rounded_rect(su, sv, 0.5, 0.64, 0.30, 0.10, 0.05) <= 0:
        color = (0.55, 0.52, 0.48) if sv > 0.62 else (0.74, 0.71, 0.66)
    # the blade: a long bright wedge above the stone
    bu, bv = rotate(u, v, 0.5, 0.38, math.radians(-12))
    if 0.18 <= bu <= 0.84:
        edge = 0.45 - 0.03 * (bu - 0.18) / 0.66
        top = 0.31
        if top <= bv <= edge:
            color = (0.93, 0.95, 0.97) if bv > edge - 0.025 else (0.78, 0.82, 0.86)
    # the handle
    if rounded_rect(bu, bv, 0.135, 0.375, 0.06, 0.045, 0.03) <= 0:
        color = (0.20, 0.13, 0.09)
    # a spark where the edge meets the stone
    if math.hypot(u - 0.74, v - 0.47) < 0.035:
        color = (1.0, 0.80, 0.30)
    return color, 1.0


def render(size):
    rows = []
    n = SAMPLES * SAMPLES
    for py in range(size):
        row = bytearray([0])  # PNG filter type: none
        for px in range(size):
            r = g = b = a = 0.0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    u = (px + (sx + 0.5) / SAMPLES) / size
                    v = (py + (sy + 0.5) / SAMPLES) / size
                    (cr, cg, cb), ca = shade(u, v)
                    r += cr * ca
                    g += cg * ca
                    b += cb * ca
                    a += ca
            if a > 0:
                r, g, b = r / a, g / a, b / a
            row += bytes(round(min(max(c, 0.0), 1.0) * 255) for c in (r, g, b, a / n))
        rows.append(bytes(row))
    return rows


def write_png(path, size):
    rows = render(size)
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    png += chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


if __name__ == "__main__":
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        write_png(os.path.join(HERE, name), size)
        print(f"wrote icons/{name} ({size}x{size})")
