"""Django-free recognition core: preprocessing, backbones, artifacts, inference, training."""

import os

# TensorFlow's C++ start-up chatter drowns the messages people need to read.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "1.0.0"
