"""Real files for the attachment tests, made by Pillow or written byte by byte."""

import io
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image

from conftest import image_bytes

__all__ = ["RUSSIAN_TEXT", "image_bytes", "jpeg_with_gps_and_rotation", "pdf_bytes", "png_claiming"]

RUSSIAN_TEXT = "Задача 3. Решите уравнение x² − 5x + 6 = 0; если x < 5, то …\n".encode()


def jpeg_with_gps_and_rotation(size: tuple[int, int] = (80, 40)) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90° clockwise to view" (6)
    and where it was taken (GPS), as a phone writes it."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (55.0, 45.0, 21.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (37.0, 37.0, 4.0)
    # Top half red, bottom half blue: after the rotation, the left half is blue.
    image = Image.new("RGB", size, "red")
    image.paste("blue", (0, size[1] // 2, size[0], size[1]))
    return image_bytes_of(image, "JPEG", exif=exif.tobytes(), quality=95)


def image_bytes_of(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    """A one-page PDF, as Pillow writes one."""
    return image_bytes_of(Image.new("RGB", (40, 40), "white"), "PDF")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` × `height` pixels, with a tiny body:
    a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def upload(client, content: bytes, name: str = "задача.png", content_type: str = "image/png"):
    """POST /api/v1/attachments/ as a browser's form does (the declared type is only a claim)."""
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post("/api/v1/attachments/", {"file": file}, format="multipart")
