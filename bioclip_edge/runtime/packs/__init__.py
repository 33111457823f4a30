"""Model packs: a bundle's vision tower and a label matrix, laid out for another tool to load.

A pack is a folder a third-party program picks up as one of its own models (``addaxai``:
AddaxAI's classification models). It holds a vision-only copy of the bundle (``vision_bundle``),
the label matrix, ``bioclip-pack.json`` (``config``: what the runtime reads back) and the files
the host program asks for. The code the host calls is this package's (``addaxai_model``), so a
pack classifies with the same graph selection, crop rule and scoring as ``classify --detections``.
"""
