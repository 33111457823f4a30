"""A static preview site of a ``classify`` output: look at what was found before trusting a spreadsheet.

``bioclip-edge preview PREDICTIONS --out DIR`` (and ``classify ... --preview DIR``) reads any
output the project writes (MegaDetector JSON, CSV, JSON Lines) and writes plain HTML pages with
inline CSS and small JPEG thumbnails: no server, no CDN, no JavaScript, every link relative, so
the folder opens offline in any browser and can be zipped and mailed.

Modules, in the order the site is built:

* ``reading``: the predictions file -> ``Predictions`` (format sniffed from the content, the
  run's metadata, records read with ``jobs.previous_output``'s fingerprint-free reader);
* ``items``: result records -> ``Item``s (top-1 label and score, top-3, boxes, video frames);
* ``thumbnails`` (+ ``frames``: video frames through ``images.video``): small JPEGs made once, in
  parallel, reused on rerun;
* ``layout`` (skeleton, style, escaping, pager), ``charts`` (bar chart, SVG histogram), ``gallery``
  (label pages' cards, boxes, frame strips), ``pages`` (index, failures): the HTML;
* ``site``: ``PreviewConfig`` and ``build_preview``, which ties them together.
"""
