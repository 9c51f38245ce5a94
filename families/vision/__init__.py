"""The vision family: image classifiers (torchvision, exported programs, users' factories), photos, the adapter,
evaluation (pixel ablation, localization) and the reading of a run's misclassified photos."""
