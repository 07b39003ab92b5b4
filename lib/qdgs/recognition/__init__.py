"""Face recognition for the QDGS book: IR-ResNet backbones, margin heads, training and verification.

The paper measures synthetic data by what it teaches a face-recognition network: pretrain on a
QDGS (or random) synthetic identity set, optionally continue on real identities, then verify on
LFW, AgeDB-30, CFP-FP, CPLFW and CALFW, and on dark- and light-skinned pairs. Training runs on
any device and, under ``torchrun``, on several GPUs (:mod:`qdgs.recognition.distributed`,
:mod:`qdgs.recognition.launch`).
"""

from qdgs.recognition.heads import HEADS, AdaFace, ArcFace, CosFace, MarginHead, make_head
from qdgs.recognition.identities import (FaceSet, identity_set_fingerprint, load_identity_set, load_image_folder,
                                         load_record, write_record)
from qdgs.recognition.iresnet import DEPTHS, BackboneConfig, IResNet, iresnet
from qdgs.recognition.train import (AugmentPlan, EpochBatches, Recognizer, TrainConfig, Trained, apply_augmentation,
                                    augment, draw_augmentation, epoch_loader, load_backbone, save_backbone, train)
from qdgs.recognition.verification import (BIN_BENCHMARKS, PairSet, PixelEmbedder, Verification,
                                           available_benchmarks, best_threshold, embed, evaluate,
                                           ita_skin_labels, load_bin, load_lfw, pair_scores, skin_split,
                                           ten_fold)

__all__ = ["HEADS", "AdaFace", "ArcFace", "CosFace", "MarginHead", "make_head", "FaceSet", "identity_set_fingerprint",
           "load_identity_set", "load_image_folder", "load_record", "write_record", "DEPTHS", "BackboneConfig",
           "IResNet", "iresnet", "AugmentPlan", "EpochBatches", "Recognizer", "TrainConfig", "Trained",
           "apply_augmentation", "augment", "draw_augmentation", "epoch_loader", "load_backbone", "save_backbone",
           "train",
           "BIN_BENCHMARKS", "PairSet", "PixelEmbedder", "Verification", "available_benchmarks", "best_threshold",
           "embed", "evaluate", "ita_skin_labels", "load_bin", "load_lfw", "pair_scores", "skin_split", "ten_fold"]
