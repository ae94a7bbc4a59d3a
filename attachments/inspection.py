"""What an upload is, decided from its bytes, and what of it is stored.

Never the name or the declared `Content-Type`: `filetype` reads the
signature of binary formats, Pillow confirms an image by decoding it, and
anything without a signature must be UTF-8 text without markup. Images
are re-encoded (metadata dropped, orientation applied, the long edge
bounded): what is stored is only pixels. A PDF whose bytes name active
content (scripts, launch actions, embedded files, forms, media) is
refused; PDFs are also only ever served as downloads in a sandbox.
"""

import codecs
import hashlib
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import filetype
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import BadImage, UnsupportedType
from .models import Attachment

CHUNK = 64 * 1024
# The signature `filetype` needs, and the start checked for markup.
HEAD_BYTES = 8192

IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 85},
    "PNG": {"compress_level": 6},
    "WEBP": {"quality": 85, "method": 4},
}
# Modes each format keeps as they are; others become RGB (or RGBA with alpha).
KEPT_MODES = {"JPEG": {"RGB", "L"}, "PNG": {"1", "L", "LA", "RGB", "RGBA", "P"}, "WEBP": {"RGB", "RGBA"}}

# Text that a browser, an XML parser or an SVG renderer would treat as markup.
MARKUP = re.compile(rb"<\s*(?:script|svg|html|head|body|iframe|object|embed|\?xml|!doctype)\b", re.IGNORECASE)
# C0 controls other than tab, line feed, form feed and carriage return.
CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# PDF names of active content, also when spelled with #xx escapes.
PDF_ACTIVE = {b"JavaScript", b"JS", b"Launch", b"EmbeddedFile", b"EmbeddedFiles", b"RichMedia", b"XFA"}
PDF_NAME = re.compile(rb"/((?:[A-Za-z]|#[0-9A-Fa-f]{2})+)")
# A JPEG larger than ATTACHMENT_MAX_EDGE is decoded straight at the smallest
# of its scales (1/2, 1/4, 1/8) whose long edge keeps this share of the edge:
# a 4000 px photo becomes 2000 px for a 2048 px edge (bench/attachments.py).
DRAFT_EDGE_SHARE = 0.9
# What one pattern match may span across two chunks.
OVERLAP = 64


@dataclass
class Inspected:
    """What will be stored: `content` (the upload itself, or the re-encoded image)."""

    kind: str
    content_type: str
    content: IO[bytes]
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None


def inspect(upload: IO[bytes]) -> Inspected:
    """The upload checked and, for an image, re-encoded. Raises UnsupportedType or BadImage."""
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    guessed = filetype.guess_mime(head)
    if guessed in IMAGE_FORMATS:
        return _image(upload, guessed)
    if guessed == "application/pdf":
        return _document(upload, "application/pdf", PdfCheck())
    if guessed is not None:
        raise UnsupportedType(f"A {guessed} file cannot be attached. {UnsupportedType.default_detail}")
    return _document(upload, "text/plain", TextCheck())


def _chunks(upload: IO[bytes]) -> Iterator[bytes]:
    upload.seek(0)
    while chunk := upload.read(CHUNK):
        yield chunk


def _document(upload: IO[bytes], content_type: str, checker: "Check") -> Inspected:
    """A document is stored as it came, once one pass over it found nothing wrong."""
    digest, size, tail = hashlib.sha256(), 0, b""
    for chunk in _chunks(upload):
        digest.update(chunk)
        size += len(chunk)
        window = tail + chunk
        if problem := checker.feed(window, chunk):
            raise UnsupportedType(problem)
        tail = window[-OVERLAP:]
    if problem := checker.end(size):
        raise UnsupportedType(problem)
    upload.seek(0)
    return Inspected(
        kind=Attachment.Kind.DOCUMENT, content_type=content_type, content=upload, size=size,
        sha256=digest.hexdigest(),
    )  # fmt: skip


class Check:
    """Reads a document chunk by chunk (`window`: the chunk after the end of
    the one before); says what is wrong with it, if anything."""

    def feed(self, window: bytes, chunk: bytes) -> str | None:
        raise NotImplementedError

    def end(self, size: int) -> str | None:
        return None


class TextCheck(Check):
    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, window: bytes, chunk: bytes) -> str | None:
        try:
            self.decoder.decode(chunk)
        except UnicodeDecodeError:
            return "A text file must be UTF-8 (or be a JPEG, PNG, WebP or PDF file)."
        if CONTROL.search(chunk):
            return "This is not a text file (it has control characters)."
        if MARKUP.search(window):
            return "HTML, SVG and XML files cannot be attached."
        return None

    def end(self, size: int) -> str | None:
        if size == 0:
            return "The file is empty."
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "A text file must be UTF-8 (or be a JPEG, PNG, WebP or PDF file)."
        return None


class PdfCheck(Check):
    def feed(self, window: bytes, chunk: bytes) -> str | None:
        for match in PDF_NAME.finditer(window):
            name = match.group(1)
            if b"#" in name:
                name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name)
            if name in PDF_ACTIVE:
                return "PDF files with scripts, actions, forms or embedded files cannot be attached."
        return None


def _image(upload: IO[bytes], content_type: str) -> Inspected:
    """Decodes the image (its pixel count checked from the header first),
    applies its EXIF orientation, bounds its long edge, and encodes it again
    in the same format with no metadata."""
    pil_format, edge = IMAGE_FORMATS[content_type], settings.ATTACHMENT_MAX_EDGE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload, formats=[pil_format]) as original:
                width, height = original.size
                if width * height > settings.ATTACHMENT_MAX_PIXELS:
                    raise BadImage(
                        f"The image has {width} × {height} pixels; at most "
                        f"{settings.ATTACHMENT_MAX_PIXELS} are accepted."
                    )
                shrink = DRAFT_EDGE_SHARE * edge / max(width, height)
                if shrink < 1:  # a JPEG decodes at 1/2, 1/4 or 1/8 of its size, for a fraction of the work
                    original.draft("RGB", (max(1, int(width * shrink)), max(1, int(height * shrink))))
                # Bounded first, turned upright after: the turn copies only the small image.
                original.thumbnail((edge, edge), Image.Resampling.LANCZOS)
                image = ImageOps.exif_transpose(original)
        if image.mode not in KEPT_MODES[pil_format]:
            alpha = "A" in image.getbands() or "transparency" in image.info
            image = image.convert("RGBA" if alpha and pil_format != "JPEG" else "RGB")
        image.info = {}  # nothing of the original's metadata (EXIF, XMP, ICC, text) is written
        encoded = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115 (returned)
        image.save(encoded, format=pil_format, **SAVE_OPTIONS[pil_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage("The image has too many pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage("The image cannot be decoded.") from exc
    digest, size = hashlib.sha256(), 0
    for chunk in _chunks(encoded):
        digest.update(chunk)
        size += len(chunk)
    encoded.seek(0)
    return Inspected(
        kind=Attachment.Kind.IMAGE, content_type=content_type, content=encoded, size=size,
        sha256=digest.hexdigest(), width=image.width, height=image.height,
    )  # fmt: skip
