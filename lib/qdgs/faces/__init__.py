"""The faces domain of QDGS: prompts, regularisers, the offline scorer, calibration, datasets and the audit.

Everything the faces chapter needs that is specific to faces; the search, the scoring and the
figures are shared with the other chapters (:mod:`qdgs.search`, :mod:`qdgs.scoring`,
:mod:`qdgs.plots`). One concept per module:

* :mod:`~qdgs.faces.prompts`: the paper's objective and measure prompts and its reported numbers.
* :mod:`~qdgs.faces.regularizers`: the latent-norm penalty and the uniqueness memory.
* :mod:`~qdgs.faces.captions`: the offline scorer's caption vocabulary and training augmentation.
* :mod:`~qdgs.faces.utkface`: the one held-out split, skin labels and the data fingerprint.
* :mod:`~qdgs.faces.skew`: the light-skewed UTKFace sample the ``default`` generator is fine-tuned on.
* :mod:`~qdgs.faces.scorer`: the offline scorer's sampler and cached training; zero-shot checks.
* :mod:`~qdgs.faces.calibration`: measure centres and spreads on random faces; entanglement.
* :mod:`~qdgs.faces.identities`: skin × gender bins, k-means identities, latent augmentations.
* :mod:`~qdgs.faces.align`: MTCNN alignment to ArcFace's template.
* :mod:`~qdgs.faces.dataset`: the image-folder dataset writer, its datasheet, the QD and Rand sets.
* :mod:`~qdgs.faces.ita`: skin tone by the individual typology angle.
* :mod:`~qdgs.faces.audit`: the UTKFace attribute classifier and the side-by-side audit.
* :mod:`~qdgs.faces.replicates`: the dark-skinned share of QD and Rand over several search seeds.
* :mod:`~qdgs.faces.backends`: which generator and scorer run, and decoding latents.
"""

from qdgs.faces import audit
from qdgs.faces.align import ARCFACE_TEMPLATE, FaceAligner, similarity_transform
from qdgs.faces.backends import load_generator, load_scorer, render
from qdgs.faces.calibration import (
                                   Calibration,
                                   calibrate,
                                   entanglement,
                                   evaluate_batched,
)
from qdgs.faces.captions import (
                                   DECADES,
                                   DEGRADATIONS,
                                   Caption,
                                   augment,
                                   image_attributes,
                                   positives,
                                   vocabulary,
)
from qdgs.faces.dataset import (
                                   WrittenDataset,
                                   datasheet,
                                   write_datasets,
                                   write_face_dataset,
)
from qdgs.faces.identities import (
                                   allocate,
                                   assign_identities,
                                   latent_augmentations,
                                   matched_random_latents,
                                   skin_gender_bins,
)
from qdgs.faces.ita import (
                                   DARK_ITA,
                                   SKIN_LABEL_ITA,
                                   ita,
                                   skin_labels,
                                   skin_mask,
                                   white_patch,
)
from qdgs.faces.prompts import (
                                   MEASURE_NAMES,
                                   MEASURE_PROMPTS,
                                   OBJECTIVE_PROMPTS,
                                   PAPER_BIN_THRESHOLD,
                                   PAPER_DARK_SHARE,
                                   PAPER_MEASURE_RANGE,
)
from qdgs.faces.regularizers import (
                                   LatentNormPenalty,
                                   UniquenessMemory,
                                   regularizers,
                                   search_scoring,
                                   typical_latent_norm,
)
from qdgs.faces.scorer import (
                                   FIRST_TRY_ZERO_SHOT,
                                   SCORER_CONFIG,
                                   FaceCaptionSampler,
                                   beside_first_try,
                                   held_out_zero_shot,
                                   offline_scorer_key,
                                   train_offline_scorer,
                                   zero_shot_accuracy,
)
from qdgs.faces.utkface import (
                                   utkface_fingerprint,
                                   utkface_ita,
                                   utkface_skin,
                                   utkface_split,
)

__all__ = [
    "audit",
    "OBJECTIVE_PROMPTS", "MEASURE_PROMPTS", "MEASURE_NAMES", "PAPER_BIN_THRESHOLD", "PAPER_MEASURE_RANGE",
    "PAPER_DARK_SHARE",
    "LatentNormPenalty", "UniquenessMemory", "typical_latent_norm", "regularizers", "search_scoring",
    "DECADES", "DEGRADATIONS", "Caption", "vocabulary", "positives", "image_attributes", "augment",
    "utkface_split", "utkface_fingerprint", "utkface_ita", "utkface_skin",
    "SCORER_CONFIG", "FaceCaptionSampler", "zero_shot_accuracy", "held_out_zero_shot", "offline_scorer_key",
    "train_offline_scorer", "FIRST_TRY_ZERO_SHOT", "beside_first_try",
    "Calibration", "evaluate_batched", "calibrate", "entanglement",
    "skin_gender_bins", "assign_identities", "allocate", "latent_augmentations", "matched_random_latents",
    "ARCFACE_TEMPLATE", "FaceAligner", "similarity_transform",
    "WrittenDataset", "write_face_dataset", "datasheet", "write_datasets",
    "DARK_ITA", "SKIN_LABEL_ITA", "white_patch", "skin_mask", "ita", "skin_labels",
    "load_generator", "load_scorer", "render",
]
