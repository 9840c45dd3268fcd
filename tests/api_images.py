"""Images as the public HTTP API carries them (base64 PNG), for the API and service tests."""

import base64
import io

import numpy as np
from PIL import Image


def png_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def png_decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))
