"""1:1 face verification at the check-in station: the face in the photo against the expert's enrolled photo.

The embedding is dlib's ResNet face-recognition model through the `face_recognition` library (128
numbers per face; two photos of one person lie within about 0.6 of each other, the library's own
tolerance, measured on LFW). Faces are found with dlib's HOG detector and aligned on five landmarks.
The weights come from the `face-recognition-models` package; nothing is downloaded at run time.

Enrolled photos are kept encrypted in the station's blob store; the index that finds an expert's photo is
keyed by an HMAC of the identity number, so the station's disk holds no identity number in clear.

Not checked: liveness. A printed photograph of the enrolled expert held up to the camera is the same
face to this model; the check-in record says what was compared, and no more.
"""

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from verifier.face import FaceMatch

if TYPE_CHECKING:
    from devices.checkin import BlobStore

DEFAULT_THRESHOLD = 0.6  # face_recognition's tolerance: distances at or below it are one person
MODEL_FILE = "dlib_face_recognition_resnet_model_v1"
MAX_SIDE = 1600  # larger photos are scaled down before detection: time grows with the pixels


class FaceModelMissing(RuntimeError):
    """The face-recognition packages are not installed; the message says which and how to install them."""


class NotEnrolled(LookupError):
    """No enrolled photo for the identity number at this station."""


@dataclass(frozen=True)
class FaceCheck:
    """What the station learned from one photo: how many faces it holds and, for exactly one, the comparison."""

    faces: int
    match: FaceMatch | None


def _library() -> ModuleType:
    # face_recognition calls quit() when its weights package is missing: look for the packages first.
    for module, package in (("face_recognition_models", "face-recognition-models"), ("dlib", "dlib-bin"),
                            ("face_recognition", "face_recognition (installed with --no-deps)")):
        if importlib.util.find_spec(module) is None:
            raise FaceModelMissing(f"face verification needs the {package} package; scripts/setup installs it")
    return importlib.import_module("face_recognition")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def rgb(image: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An OpenCV (BGR or gray) image as the contiguous 8-bit RGB array dlib reads, scaled to at most MAX_SIDE."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    side = max(image.shape[:2])
    if side > MAX_SIDE:
        image = cv2.resize(image, None, fx=MAX_SIDE / side, fy=MAX_SIDE / side, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def decode(photo: bytes) -> np.ndarray[Any, Any] | None:
    """A photo's bytes as an OpenCV BGR image, or None when OpenCV cannot decode them."""
    return cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)


class FaceEmbedder:
    """dlib's ResNet embedding through face_recognition. Loaded once per process (about 1.5 s); thread-safe."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        self._fr = _library()
        import face_recognition_models

        weights = Path(face_recognition_models.face_recognition_model_location())
        self.model_sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
        self.model = (f"{MODEL_FILE} with shape_predictor_5_face_landmarks (face_recognition "
                      f"{_version('face_recognition')}, face_recognition_models {_version('face_recognition_models')}"
                      f", dlib {_version('dlib-bin')})")

    def faces(self, image: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
        """One 128-number embedding per face found in `image` (OpenCV BGR)."""
        pixels = rgb(image)
        with self._lock:  # dlib's detector and models are not documented as safe to share across threads
            locations = self._fr.face_locations(pixels)
            return list(self._fr.face_encodings(pixels, locations))


class EnrolledPhotos:
    """The experts' enrolled photos, encrypted in a `devices.checkin.BlobStore`, found by a keyed hash of the
    identity number (`BlobStore.label`)."""

    def __init__(self, blobs: "BlobStore", index: Path) -> None:
        self.blobs = blobs
        self.index = Path(index)

    def _read(self) -> dict[str, str]:
        if not self.index.exists():
            return {}
        found = json.loads(self.index.read_text())
        if not isinstance(found, dict):
            raise ValueError(f"enrolment index {self.index} is not a JSON object")
        return {str(k): str(v) for k, v in found.items()}

    def enrol(self, identity_number: str, photo: bytes) -> str:
        """Keep `photo` as the enrolled photo of `identity_number` (replacing an earlier one); its SHA-256."""
        digest = self.blobs.put(photo)
        index = self._read()
        index[self.blobs.label(identity_number)] = digest
        tmp = self.index.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(index, sort_keys=True))
        os.replace(tmp, self.index)
        return digest

    def digest(self, identity_number: str) -> str:
        """The SHA-256 of the enrolled photo of `identity_number`; NotEnrolled if there is none."""
        digest = self._read().get(self.blobs.label(identity_number))
        if digest is None:
            raise NotEnrolled("no enrolled photo for this identity number at this station; enrol one first "
                              "(bidtrace device enrol)")
        return digest

    def photo(self, identity_number: str) -> bytes:
        return self.blobs.get(self.digest(identity_number))


class FaceRecognitionVerifier:
    """A face-verification provider for `devices.checkin.CheckinStation`: dlib's ResNet embedding, 1:1 against
    the enrolled photo, match when the Euclidean distance is at most `threshold`."""

    name = "face_recognition-dlib-resnet"

    def __init__(self, enrolled: EnrolledPhotos, threshold: float = DEFAULT_THRESHOLD,
                 embedder: FaceEmbedder | None = None) -> None:
        if not 0 < threshold < 2:
            raise ValueError(f"the face threshold must be between 0 and 2, got {threshold}")
        self.enrolled = enrolled
        self.threshold = threshold
        self.embedder = embedder or FaceEmbedder()
        self._references: dict[str, np.ndarray[Any, Any]] = {}  # enrolled photo digest -> its embedding, in memory

    def enrol(self, identity_number: str, photo: bytes) -> str:
        """Enrol `photo` for `identity_number`: it must be an image with exactly one face."""
        image = decode(photo)
        if image is None:
            raise ValueError("the enrolment photo is not an image OpenCV can decode")
        found = len(self.embedder.faces(image))
        if found != 1:
            raise ValueError(f"an enrolment photo must show exactly one face, found {found}")
        return self.enrolled.enrol(identity_number, photo)

    def _reference(self, identity_number: str) -> np.ndarray[Any, Any]:
        digest = self.enrolled.digest(identity_number)
        if digest not in self._references:
            enrolled_image = decode(self.enrolled.photo(identity_number))
            found = self.embedder.faces(enrolled_image) if enrolled_image is not None else []
            if len(found) != 1:
                raise NotEnrolled(f"the enrolled photo of this identity number shows {len(found)} faces; enrol "
                                  "a photo with exactly one")
            self._references[digest] = found[0]
        return self._references[digest]

    def verify(self, image: np.ndarray[Any, Any], identity_number: str) -> FaceCheck:
        """Count the faces in `image`; with exactly one, compare it with the enrolled photo. NotEnrolled when
        the identity number has no enrolled photo here."""
        faces = self.embedder.faces(image)
        if len(faces) != 1:
            return FaceCheck(len(faces), None)
        distance = float(np.linalg.norm(faces[0] - self._reference(identity_number)))
        return FaceCheck(1, FaceMatch.decide(distance, self.threshold, self.embedder.model,
                                             self.embedder.model_sha256))
