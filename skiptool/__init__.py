"""skiptool: generate image, text and speech from one another, skip-modal included."""

__version__ = "0.1.0"

MODALITIES = ("image", "text", "speech")
