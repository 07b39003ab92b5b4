"""qdgs: Quality-Diversity Generative Sampling (Chang et al., AAAI 2024), reproduced.

The package behind the QDGS book: prompt scoring with one-pass Jacobians (:mod:`qdgs.scoring`),
Algorithm 1 over pyribs (:mod:`qdgs.search`), the shapes and faces domains, face recognition, and
the plumbing that runs the book's notebooks (:mod:`qdgs.cli`).
"""

import warnings

# tqdm.auto, imported by dependencies, warns in kernels without ipywidgets; our bars are plain tqdm.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
