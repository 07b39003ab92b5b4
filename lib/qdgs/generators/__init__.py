"""Generators behind the QDGS generator interface: ``forward(z (B, D)) -> (B, 3, H, W)`` in [0, 1].

- :mod:`qdgs.generators.shapes_vae`: the shapes VAE (latent 6), trained in the repository.
- :mod:`qdgs.generators.dcgan`: the DCGAN face generator of ``gan-face-generate`` (default profile).
- :mod:`qdgs.generators.stylegan2`: StyleGAN2-FFHQ-256 from NVIDIA's pickle (paper profile).

Submodules are imported on use so that one backend's dependencies never burden another's.
"""
