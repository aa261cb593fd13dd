"""An upload made into an avatar with Pillow: what the bytes say they are is checked before a pixel
is decoded, then the image is turned upright, cropped to its centre square, scaled and written
as a JPEG. The rules (formats, pixels, size) are domain/avatars.py's."""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

from domain.avatars import AVATAR_SIDE, IMAGE_FORMATS, MAX_PIXELS, AvatarRefused

JPEG_QUALITY = 85


def square_jpeg(data: bytes, side: int = AVATAR_SIDE, max_pixels: int = MAX_PIXELS) -> bytes:
    """The avatar made of an uploaded file, or AvatarRefused ("not_an_image": no image of an
    allowed format, or one that does not decode; "image_too_large": more pixels than
    `max_pixels`, a decompression bomb among them)."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)  # reads the header only
    except Image.DecompressionBombError as error:  # Pillow's own limit, far above ours
        raise AvatarRefused("image_too_large", str(error)) from None
    except Exception as error:  # whatever the decoders raise on hostile bytes
        raise AvatarRefused("not_an_image", f"not an image of {', '.join(IMAGE_FORMATS)}: {error}") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > max_pixels:
            raise AvatarRefused("image_too_large",
                                f"{width} x {height} pixels: an avatar is made of at most {max_pixels:,}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.seek(0)  # an animation's first frame
                image.load()
                upright = ImageOps.exif_transpose(image)
                square = ImageOps.fit(upright, (side, side), Image.Resampling.LANCZOS)
                out = io.BytesIO()
                _flattened(square).save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        except AvatarRefused:
            raise
        except Exception as error:  # truncated, corrupt, a bomb inside a frame
            raise AvatarRefused("not_an_image", f"the image does not decode: {error}") from None
    return out.getvalue()


def _flattened(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency over white (a transparent PNG's background is not black)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")
