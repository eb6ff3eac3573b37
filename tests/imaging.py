"""Images of known text for real-engine tests, drawn with Pillow's bundled font."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TEXT_LINES = ("Quick brown foxes", "jump over lazy dogs", "every single day")


def write_text_image(path: Path, lines: tuple[str, ...] = TEXT_LINES) -> Path:
    """Large black words on white, in Pillow's bundled TrueType font.

    Three lines, because evaluation mode returns only the first part of an image's text.
    """
    font = ImageFont.load_default(size=40)
    width = max(int(font.getlength(line)) for line in lines) + 80
    image = Image.new("L", (width, 70 * len(lines) + 40), 255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((40, 20 + 70 * row), line, font=font, fill=0)
    image.save(path)
    return path
