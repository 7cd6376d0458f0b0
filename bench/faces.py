"""Face verification at check-in: the distances the model gives on the shipped portraits, and its cost.

For each portrait (Eileen Collins from scikit-image, Grace Hopper from matplotlib) enrolled at a station,
the photo presented under each change the tests check (tests/devices/test_face.py), as a printed copy,
and the other person's photo, with the decision against the default threshold. Then the time of one
verification (find the faces, embed the one found, compare with the enrolled embedding kept in memory):
median and best of --repeat, per portrait size, and the time to load the model.

    python -m bench.faces [--repeat 20]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import machine, table
from devices.checkin import BlobStore
from devices.face import DEFAULT_THRESHOLD, EnrolledPhotos, FaceEmbedder, FaceRecognitionVerifier
from devices.portraits import astronaut, grace_hopper, png
from tests.devices.test_face import CHANGES, printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    embedder = FaceEmbedder()
    loaded = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp(prefix="bidtrace-faces-"))
    faces = FaceRecognitionVerifier(EnrolledPhotos(BlobStore(folder / "b", folder / "k"), folder / "i.json"),
                                    embedder=embedder)
    people = {"Collins": astronaut(), "Hopper": grace_hopper()}
    for name, portrait in people.items():
        faces.enrol(name, png(portrait))
    rows = []
    for name, portrait in people.items():
        other = next(o for o in people if o != name)
        shown = {**{change: apply(portrait) for change, apply in CHANGES.items()}, "printed copy": printed(portrait),
                 f"{other}'s photo": people[other]}
        for change, image in shown.items():
            check = faces.verify(image, name)
            found = check.match
            rows.append([name, change, str(check.faces), f"{found.distance:.4f}" if found else "-",
                         found.decision if found else "no comparison"])
    timing = []
    for name, portrait in people.items():
        faces.verify(portrait, name)  # the enrolled embedding is computed once, then kept
        took = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            faces.verify(portrait, name)
            took.append(time.perf_counter() - t0)
        h, w = portrait.shape[:2]
        timing.append([f"{name} ({w}×{h})", f"{statistics.median(took) * 1000:,.0f} ms",
                       f"{min(took) * 1000:,.0f} ms"])
    print(machine())
    print(f"\nmodel: {embedder.model}, weights sha256 {embedder.model_sha256[:16]}…, loaded in {loaded:.1f} s; "
          f"threshold {DEFAULT_THRESHOLD}\n")
    print(table(["enrolled", "presented", "faces", "distance", "decision"], rows))
    print(f"\none verification, {args.repeat} runs:\n")
    print(table(["photo", "median", "best"], timing))


if __name__ == "__main__":
    main()
