"""What the console draws: where each keypoint group looks, over the policy's camera, and
the words each group read of the command."""

from __future__ import annotations

import cv2
import numpy as np

# Group 0 looks for the object, group 1 for the second thing (zone, base, board location).
GROUP_COLOURS = ((255, 80, 40), (40, 200, 255))  # RGB
GROUP_NAMES = ("object", "second")
DRAWN_GROUPS = 2
# Tokens left out of a group's label: the encoder's markers and words that name nothing.
SKIPPED = {"[CLS]", "[SEP]", "the", "a", "an", "up", "to", "of", "on", "in", "into", "with",
           "and", "it", "please", "your", "its", "at", "next", "by"}


def draw_attention(view: np.ndarray, heat: np.ndarray, labels: list[str]) -> np.ndarray:
    """`view` (S, S, 3) uint8 with the first groups' maps of `heat` (G, h, w) blended in,
    each in its colour where the group looks hardest, its peak ringed and labelled."""
    out = view.astype(np.float32)
    size = view.shape[1], view.shape[0]
    for g in range(min(DRAWN_GROUPS, len(heat))):
        prob = cv2.resize(heat[g].astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        weight = np.clip(prob / max(float(prob.max()), 1e-12), 0.0, 1.0)[..., None] ** 2
        colour = np.array(GROUP_COLOURS[g], np.float32)
        out = out * (1 - 0.55 * weight) + colour * 0.55 * weight
    out = out.clip(0, 255).astype(np.uint8)
    scale = view.shape[0] / heat.shape[-2]
    for g in range(min(DRAWN_GROUPS, len(heat))):
        y, x = np.unravel_index(int(np.argmax(heat[g])), heat[g].shape)
        centre = (int((x + 0.5) * scale), int((y + 0.5) * scale))
        cv2.circle(out, centre, max(6, int(scale * 1.5)), GROUP_COLOURS[g], 2)
        text = labels[g] if g < len(labels) else GROUP_NAMES[g]
        cv2.putText(out, text, (6, 16 + 16 * g), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    GROUP_COLOURS[g], 1, cv2.LINE_AA)
    return out


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def group_labels(policy, instruction: str, words: int = 2) -> list[str]:
    """For each drawn keypoint group, "<group>: <the words it attends to most>", read from
    the policy's own attention over the instruction's tokens; plain group names for a
    policy without referent keypoint groups."""
    keypoints = getattr(getattr(policy, "model", None), "keypoints", None)
    if keypoints is None or not hasattr(keypoints, "attention"):
        return list(GROUP_NAMES)
    import torch

    language = policy.language
    lang, mask = language.encode([instruction])
    with torch.no_grad():
        weights = keypoints.attention(lang, mask)[0].cpu().numpy()  # (G, L)
    ids = language.tokenizer([instruction], truncation=True,
                             max_length=language.max_tokens)["input_ids"][0]
    tokens = language.tokenizer.convert_ids_to_tokens(ids)
    labels = []
    for g in range(min(DRAWN_GROUPS, len(weights))):
        order = [i for i in np.argsort(-weights[g][: len(tokens)])
                 if tokens[i] not in SKIPPED]
        picked = sorted(order[:words])  # in sentence order
        labels.append(f"{GROUP_NAMES[g]}: " + " ".join(tokens[i].lstrip("#") for i in picked))
    return labels
