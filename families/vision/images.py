"""Images as the classifiers read them: any common file format decoded to 8-bit RGB, or a clear refusal."""
from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from families.vision.errors import ImageError

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")
MIN_SIDE = 16  # pixels; smaller images carry nothing a 224x224 network can use
MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)


def load_image(source: "bytes | str | os.PathLike | io.IOBase") -> Image.Image:
    """Decode an image file to an RGB PIL image, or raise ImageError saying what is wrong.

    Accepts JPEG, PNG, WebP, BMP, TIFF (and GIF). Animated or multi-page files: the first frame is
    used and `image.info["notices"]` says so. Greyscale, palette, CMYK and 16-bit images are converted
    to 8-bit RGB; transparent pixels are composited on white. EXIF orientation is applied.
    """
    data = _read_bytes(source)
    if not data:
        raise ImageError("The file is empty (0 bytes).")
    notices: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
                                 f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Resize it first.")
            if img.format not in IMAGE_FORMATS:
                raise ImageError(f"{img.format} images are not supported; use JPEG, PNG, WebP, BMP or TIFF.")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                img.seek(0)
                notices.append(f"The file has {frames} frames (animated or multi-page); the first frame is used.")
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"The image is too large to decode safely (possible decompression bomb): {exc}") from None
    except UnidentifiedImageError:
        raise ImageError("The file is not a recognised image; upload a JPEG, PNG, WebP, BMP or TIFF file.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"The image file is damaged or truncated and could not be decoded ({exc}).") from None
    if min(img.size) < MIN_SIDE:
        raise ImageError(f"The image is {img.size[0]} x {img.size[1]} pixels; it must be at least "
                         f"{MIN_SIDE} x {MIN_SIDE}.")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not refuse a good image
        pass
    rgb = _to_rgb(img)
    rgb.info["notices"] = notices
    rgb.info["source_mode"] = img.mode
    rgb.info["source_format"] = img.format or ""
    return rgb


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.is_file():
            raise ImageError(f"No such image file: {path}")
        return path.read_bytes()
    if hasattr(source, "read"):  # a file-like object, e.g. Streamlit's UploadedFile
        if hasattr(source, "seek"):
            source.seek(0)
        return source.read()
    raise ImageError(f"Cannot read an image from a {type(source).__name__}.")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit greyscale: scale, do not clip
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size else 0.0
        if mode.startswith("I;16") or (mode == "I" and top > 255):
            arr = arr / 257.0
        elif mode == "F" and top <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8)).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")

