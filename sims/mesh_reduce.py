"""Reduce binary STL meshes by vertex clustering, for fast CPU rendering.

TinyRenderer's time grows with the triangles it shades: the SO-101's stock meshes
(322k triangles) took 106 ms per 128x128 frame. Snapping every vertex to a grid of
`cell` metres, merging the vertices of a cell at their mean and dropping triangles
that collapse keeps the silhouette to within a cell (Rossignac and Borrel's vertex
clustering) at a few percent of the triangles.

    python -m sims.mesh_reduce SRC_DIR DST_DIR --cell 0.005

This made bridges/third_party/so_arm100/meshes (see the NOTICE there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

_TRIANGLE = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])


def read_stl(path: Path) -> np.ndarray:
    """Binary STL -> float64 (N, 3, 3) triangle corners."""
    data = path.read_bytes()
    if len(data) < 84:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a binary STL")
    count = int(np.frombuffer(data, "<u4", 1, 80)[0])
    if len(data) != 84 + 50 * count:
        raise ValueError(f"{path}: header says {count} triangles but the file holds "
                         f"{(len(data) - 84) / 50:g}; expected a binary STL")
    return np.frombuffer(data, _TRIANGLE, count, 84)["vertices"].astype(np.float64)


def write_stl(path: Path, triangles: np.ndarray) -> None:
    """(N, 3, 3) corners -> binary STL with normals from the winding."""
    out = np.zeros(len(triangles), _TRIANGLE)
    out["vertices"] = triangles
    normal = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    out["normal"] = normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    header = b"vertex-clustered by sims/mesh_reduce.py".ljust(80, b" ")
    path.write_bytes(header + np.uint32(len(out)).tobytes() + out.tobytes())


def cluster(triangles: np.ndarray, cell: float) -> np.ndarray:
    """(N, 3, 3) -> (M, 3, 3), M <= N: vertices merged per grid cell of `cell` metres."""
    corners = triangles.reshape(-1, 3)
    keys = np.floor(corners / cell).astype(np.int64)
    _, cell_of, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cell_of = cell_of.reshape(-1)
    means = np.zeros((len(counts), 3))
    np.add.at(means, cell_of, corners)
    means /= counts[:, None]
    ids = cell_of.reshape(-1, 3)  # (N, 3) cell of each corner
    keep = (ids[:, 0] != ids[:, 1]) & (ids[:, 1] != ids[:, 2]) & (ids[:, 0] != ids[:, 2])
    ids = ids[keep]
    # One copy of each triangle, whatever corner it starts from (winding kept).
    rolled = np.stack([np.roll(ids, -k, axis=1) for k in range(3)])  # (3, M, 3)
    first = np.argmin(rolled[:, :, 0], axis=0)
    canonical = rolled[first, np.arange(len(ids))]
    _, unique = np.unique(canonical, axis=0, return_index=True)
    return means[ids[np.sort(unique)]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="folder of binary .stl files")
    parser.add_argument("dst", type=Path, help="folder to write the reduced files to")
    parser.add_argument("--cell", type=float, default=0.005, help="grid cell, metres")
    args = parser.parse_args(argv)
    args.dst.mkdir(parents=True, exist_ok=True)
    total_in = total_out = 0
    for path in sorted(args.src.glob("*.stl")):
        triangles = read_stl(path)
        reduced = cluster(triangles, args.cell)
        write_stl(args.dst / path.name, reduced)
        total_in, total_out = total_in + len(triangles), total_out + len(reduced)
        print(f"{path.name}: {len(triangles)} -> {len(reduced)} triangles")
    print(f"total: {total_in} -> {total_out} triangles", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
