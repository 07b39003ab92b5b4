"""MTCNN five-point alignment of generated faces to ArcFace's 112 × 112 template.

Face recognition backbones are trained on aligned crops; generated faces are framed loosely.
Each face's landmarks define a similarity transform (Umeyama least squares) onto the template.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from qdgs.device import resolve_device

__all__ = ["ARCFACE_TEMPLATE", "FaceAligner", "similarity_transform"]

#: ArcFace's 112 × 112 five-point template (eyes, nose tip, mouth corners).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


class FaceAligner:
    """MTCNN five-point alignment to ArcFace's 112 × 112 template (facenet-pytorch's shipped weights).

    Generated images are upsampled to 256 px before detection (MTCNN expects faces of a few
    dozen pixels and more). A face MTCNN misses is centre-resized instead and marked unaligned.

    Args:
        size: the output side in pixels.
        device: where MTCNN detects (:func:`qdgs.device.resolve_device`); the warp runs where the
            images are.
    """

    def __init__(self, size: int = 112, device: str | torch.device = "cpu") -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:
            raise RuntimeError("face alignment needs facenet-pytorch: run "
                               "`pip install --no-deps facenet-pytorch==2.6.0` (or `make setup`)") from err
        self.size = size
        self.mtcnn = MTCNN(device=resolve_device(device), post_process=False, select_largest=True)

    @torch.no_grad()
    def landmarks(self, images: torch.Tensor) -> list[np.ndarray | None]:
        """Five landmarks per image ((5, 2) in the image's own pixel units) or None."""
        h = images.shape[-1]
        big = F.interpolate(images.clamp(0, 1), size=(256, 256), mode="bilinear", align_corners=False)
        _, _, marks = self.mtcnn.detect((big.permute(0, 2, 3, 1) * 255).round(), landmarks=True)
        return [None if m is None else np.asarray(m[0], dtype=np.float64) * h / 256 for m in marks]

    def warp(self, images: torch.Tensor, marks: Sequence[np.ndarray | None]) -> torch.Tensor:
        """(B, 3, size, size) crops: similarity transforms from each image's landmarks to the template.

        Not :func:`qdgs.images.reframe`: a fixed transform per image onto another output size,
        with border padding, rather than a random one that keeps the size.
        """
        b, _, h, w = images.shape
        template = ARCFACE_TEMPLATE * self.size / 112
        thetas = []
        for m in marks:
            if m is None:  # centre crop: the whole image resized
                thetas.append(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
                continue
            a = similarity_transform(template, m)  # output pixel → input pixel
            # to normalised coordinates (align_corners=False): x_n = (2x + 1) / W − 1
            to_out = np.array([[self.size / 2, 0, self.size / 2 - 0.5], [0, self.size / 2, self.size / 2 - 0.5], [0, 0, 1]])
            to_in = np.array([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]])
            thetas.append((to_in @ np.vstack([a, [0, 0, 1]]) @ to_out)[:2])
        theta = torch.as_tensor(np.stack(thetas), dtype=images.dtype, device=images.device)
        grid = F.affine_grid(theta, [b, 3, self.size, self.size], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity transform (Umeyama) mapping (K, 2) ``src`` points onto ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1, np.sign(np.linalg.det(u @ vt))])
    r = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / (s ** 2).sum(1).mean()
    return np.hstack([scale * r, (mu_d - scale * r @ mu_s)[:, None]])
