"""Files a pack command copies verbatim into a pack (``addaxai_inference.py`` becomes a pack's
``inference.py``). They are modules too, so the wheel ships them and the import checks see them."""
