"""Reproducible training of onair's models (not imported at run time; needs numpy).

    python -m moderation.training.train_hate_model [DATA_DIR]

See `train_hate_model` for the data, its licences and the cross-validation.
"""
