"""Ground-truth masks of lane markings and road edges: the simulator's label images.

The map's painted lines are sampled once per reset (`map_lines`), widened into world-space quads
(`build_quads`) and projected into the camera every frame (`project_quads`). Only `map_lines`
reads MetaDrive objects (a road-network graph and its LineType); the rest is numpy and OpenCV on
Panda3D's row-vector matrices.
"""

import cv2
import numpy as np

# Lane and edge line half width for masks; MetaDrive paints lines 0.15-0.2 m wide, and a
# little margin keeps a 1-px line at 80x160 from falling between pixels.
LINE_HALF_WIDTH_M = 0.2
MASK_RANGE_M = 80.0              # lines further than this are not drawn into masks
MASK_MARKING, MASK_EDGE = 1, 2   # mask values: lane marking, road edge (0 = neither)


def map_lines(graph, line_type, stripe_m: float) -> list:
    """Sample every painted line of a MetaDrive road network as Panda3D world points.

    Args:
        graph: `road_network.graph` of the current map.
        line_type: MetaDrive's LineType constants.
        stripe_m: length of one painted stripe of a broken line.

    Returns:
        list of (mask value, (n, 3) float32 world points).
    """
    lt = line_type
    lines = []
    for ends in graph.values():
        for lanes in ends.values():
            for lane in lanes:
                for side, kind in zip((-1, 1), lane.line_types):
                    if kind == lt.NONE:
                        continue
                    lateral = side * lane.width_at(0) / 2
                    value = MASK_EDGE if kind == lt.SIDE else MASK_MARKING
                    for start, stop in painted_intervals(lane.length, kind == lt.BROKEN,
                                                         stripe_m):
                        s = np.linspace(start, stop, max(2, int((stop - start) / 1.0) + 1))
                        xy = np.array([lane.position(si, lateral) for si in s])
                        pts = np.column_stack([xy[:, 0], -xy[:, 1], np.zeros(len(s))])
                        lines.append((value, pts.astype(np.float32)))
    return lines


def project_quads(quads, world_to_camera, projection, near: float, camera_xy,
                  height: int = 80, width: int = 160) -> np.ndarray:
    """Rasterise the quads seen by a camera into a mask.

    Args:
        quads: from `build_quads` (None or empty: an empty mask).
        world_to_camera: (4, 4) Panda3D row-vector matrix from world to camera coordinates.
        projection: (4, 4) the lens projection (camera to clip coordinates).
        near: near plane distance of the lens.
        camera_xy: (2,) camera position in the world, for range culling.
        height, width: mask size (80x160 is the network input frame).

    Returns:
        (height, width) uint8: MASK_MARKING (1) on lane markings, MASK_EDGE (2) on road
        edges (kerb lines), 0 elsewhere.
    """
    full = world_to_camera @ projection  # row vectors: p @ M
    mask = np.zeros((height, width), np.uint8)
    if quads is None or not len(quads['value']):
        return mask
    offset = quads['centre'] - np.asarray(camera_xy)
    near_enough = np.sum(offset ** 2, axis=1) < MASK_RANGE_M ** 2
    corners = quads['corners'][near_enough]                    # (M, 4, 4) homogeneous
    values = quads['value'][near_enough]
    depth = (corners @ world_to_camera)[..., 1]                   # cameras look along +y
    in_front = np.all(depth > near, axis=1)
    corners, values = corners[in_front], values[in_front]
    clip = corners @ full
    w = clip[..., 3:4]
    pixels = np.empty(clip.shape[:-1] + (2,))
    pixels[..., 0] = (clip[..., 0] / w[..., 0] + 1.0) * 0.5 * width
    pixels[..., 1] = (1.0 - clip[..., 1] / w[..., 0]) * 0.5 * height
    on_image = ((pixels[..., 0].max(1) >= 0) & (pixels[..., 0].min(1) < width)
                & (pixels[..., 1].max(1) >= 0) & (pixels[..., 1].min(1) < height))
    pixels = np.round(np.clip(pixels[on_image], -4 * width, 4 * width)).astype(np.int32)
    values = values[on_image]
    # edges first, markings on top (a kerb line next to a marking keeps the marking label)
    for value in (MASK_EDGE, MASK_MARKING):
        chosen = pixels[values == value]
        for quad in chosen:
            cv2.fillConvexPoly(mask, quad, int(value))
        if len(chosen):
            # a line narrower than a pixel still marks the pixels it crosses
            centre = (chosen[:, [0, 1]] + chosen[:, [3, 2]]) // 2
            cv2.polylines(mask, list(np.ascontiguousarray(centre, np.int32)), False,
                          int(value), 1)
    return mask


def painted_intervals(length: float, broken: bool, stripe_m: float) -> list:
    """Return the [start, stop] stretches of a line that carry paint (MetaDrive's pattern)."""
    if not broken:
        return [(0.0, float(length))]
    count = int(length / (2 * stripe_m))
    spans = []
    for k in range(count):
        start = k * 2 * stripe_m
        stop = length - stripe_m if k == count - 1 else start + stripe_m
        if stop > start:
            spans.append((start, stop))
    return spans


def build_quads(lines: list) -> dict:
    """Turn sampled lines into world-space quads LINE_HALF_WIDTH_M either side of each line.

    Returns:
        {'corners': (M, 4, 4) homogeneous Panda3D world points, 'value': (M,) mask value,
        'centre': (M, 2) quad centres (x, y) for range culling}.
    """
    corners, values = [], []
    for value, pts in lines:
        direction = np.gradient(pts[:, :2].astype(np.float64), axis=0)
        norm = np.linalg.norm(direction, axis=1, keepdims=True)
        normal = np.column_stack([-direction[:, 1], direction[:, 0]]) / np.maximum(norm, 1e-6)
        edges = []
        for sign in (-1.0, 1.0):
            xy = pts[:, :2] + sign * LINE_HALF_WIDTH_M * normal
            edges.append(np.column_stack([xy, pts[:, 2], np.ones(len(pts))]))
        quad = np.stack([edges[0][:-1], edges[0][1:], edges[1][1:], edges[1][:-1]], axis=1)
        corners.append(quad)
        values.append(np.full(len(quad), value, np.uint8))
    if not corners:
        return {'corners': np.zeros((0, 4, 4)), 'value': np.zeros(0, np.uint8),
                'centre': np.zeros((0, 2))}
    corners = np.concatenate(corners)
    return {'corners': corners, 'value': np.concatenate(values),
            'centre': corners[:, :, :2].mean(axis=1)}
