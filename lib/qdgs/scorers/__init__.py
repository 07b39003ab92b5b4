"""Prompt scorers behind the QDGS scorer interface (``encode_text``, ``encode_image``, unit embeddings).

- :mod:`qdgs.scorers.offline_clip`: small CLIP-architecture models trained in the repository from a
  JSON config in ``lib/qdgs/configs`` (``smoke`` and ``default`` profiles, shapes and faces).
- :mod:`qdgs.scorers.openai_clip`: OpenAI CLIP ViT-B/32 through open_clip (``paper`` profile).

Submodules are imported on use.
"""
