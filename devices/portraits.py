"""Photographs of real people that ship inside installed packages, for the demonstration and the tests of
face verification; nothing is downloaded, nothing is generated.

- scikit-image's `skimage.data.astronaut()`: astronaut Eileen Collins (NASA, public domain), 512×512,
  from `skimage/data/astronaut.png` inside the wheel.
- matplotlib's sample data `grace_hopper.jpg`: Rear Admiral Grace Hopper (US Navy, public domain), 512×600,
  inside `matplotlib/mpl-data/sample_data/`.

Both packages come with the test extra (scripts/setup). The full astronaut photo holds a second "face" to
dlib's detector (on the suit), so her portrait is cropped to the head and shoulders.
"""

from typing import Any

import cv2
import numpy as np

Image = np.ndarray[Any, Any]


class PortraitsMissing(RuntimeError):
    """The package that ships a portrait is not installed."""


def astronaut() -> Image:
    """Eileen Collins, head and shoulders (300×260), as an OpenCV BGR image."""
    try:
        from skimage import data
    except ImportError as exc:
        raise PortraitsMissing("the astronaut portrait ships with scikit-image; install the test extra") from exc
    rgb = data.astronaut()  # type: ignore[no-untyped-call]
    return np.ascontiguousarray(cv2.cvtColor(rgb[0:300, 100:360], cv2.COLOR_RGB2BGR))


def grace_hopper() -> Image:
    """Grace Hopper (600×512), as an OpenCV BGR image."""
    try:
        from matplotlib import cbook
    except ImportError as exc:
        raise PortraitsMissing("the Grace Hopper portrait ships with matplotlib; install the test extra") from exc
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PortraitsMissing("matplotlib's grace_hopper.jpg cannot be decoded")
    return image


def png(image: Image) -> bytes:
    """An image as the PNG bytes a camera file would hold."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("cannot encode the image as PNG")
    return bytes(encoded.tobytes())
